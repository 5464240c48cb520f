"""One small generic registry used by every plug-in family (methods, merge rules, pruners, attacks, datasets).

Pattern from huggingface/peft (``register_peft_method``): each plug-in registers itself in one explicit line
where it is defined. Duplicate names are an error; a lookup of an unknown name lists the valid ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from adaptermix.core.errors import AdapterMixError

T = TypeVar("T")


class UnknownNameError(AdapterMixError):
    """Lookup of a name that is not registered."""


class Registry(Generic[T]):
    """A name -> object mapping for one family of plug-ins."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        """Register ``item`` under ``name``; registering a name twice is a programming error."""
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item
        return item

    def unregister(self, name: str) -> T:
        """Remove ``name`` and return its item (for tests that register a plug-in of their own)."""
        if name not in self._items:
            raise KeyError(f"{self.kind} {name!r} is not registered")
        return self._items.pop(name)

    @contextmanager
    def registered(self, name: str, item: T) -> Iterator[T]:
        """Register ``item`` for the duration of a ``with`` block (tests), then unregister it."""
        self.register(name, item)
        try:
            yield item
        finally:
            self.unregister(name)

    def get(self, name: str) -> T:
        """Return the item registered as ``name`` or raise a one-line error listing valid names."""
        try:
            return self._items[name]
        except KeyError:
            valid = ", ".join(sorted(self._items)) or "(none)"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; valid: {valid}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(sorted(self._items.items()))

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)
