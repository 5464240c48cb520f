"""The black-box victim: what an attack may ask of a model, and a query cache that counts model calls.

A black-box attack (TextFooler) sees a model only through :class:`Victim.predict_proba`: class
probabilities for a batch of (text, text_pair) inputs. Anything that implements the protocol can be
attacked — the adapter/mixture victim of the sweep, a scikit-learn pipeline, or a hand-written fake in a
test. White-box attacks (FGSM) need gradients and use the model-backed victim directly.

:class:`CachedVictim` wraps a victim with a query cache keyed by ``(identity, text, text_pair)``. The
identity names the model behind the victim (a mixture's key in a sweep): a sweep that hot-swaps mixture
weights into one live model either keeps one ``CachedVictim`` per mixture or calls
:meth:`CachedVictim.set_identity` when it swaps, so a cached score is never reused for another mixture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

Input = tuple[str, str | None]
"""One model input: (text, text_pair); ``text_pair`` is None for single-sentence tasks."""


@runtime_checkable
class Victim(Protocol):
    """A classifier seen as a black box: class probabilities for a batch of inputs."""

    num_labels: int
    is_pair: bool

    def predict_proba(self, batch: Sequence[Input]) -> np.ndarray:
        """Probabilities ``[len(batch), num_labels]`` (rows sum to 1) for ``batch``."""
        ...


@dataclass
class QueryStats:
    """Counters of one :class:`CachedVictim` (or a snapshot difference of two)."""

    lookups: int = 0  # inputs asked for, cached or not
    model_calls: int = 0  # inputs actually sent to the model (cache misses)
    batches: int = 0  # calls of the wrapped victim's predict_proba

    def __sub__(self, other: QueryStats) -> QueryStats:
        return QueryStats(
            self.lookups - other.lookups, self.model_calls - other.model_calls, self.batches - other.batches
        )


class CachedVictim:
    """A :class:`Victim` wrapper that caches probabilities per (identity, text, text_pair) and counts calls.

    ``cache=False`` keeps the counting but sends every input to the model (the benchmark's baseline).
    Duplicates inside one batch are sent once. ``max_entries`` bounds memory: when the cache is full it is
    emptied (a sweep attacks one mixture at a time, so old entries are rarely useful anyway).
    """

    def __init__(
        self,
        victim: Victim,
        identity: str = "default",
        *,
        cache: bool = True,
        max_entries: int | None = 500_000,
    ) -> None:
        self.victim = victim
        self.identity = identity
        self.cache_enabled = cache
        self.max_entries = max_entries
        self._cache: dict[tuple[str, str, str | None], np.ndarray] = {}
        self.stats = QueryStats()

    @property
    def num_labels(self) -> int:
        return int(self.victim.num_labels)

    @property
    def is_pair(self) -> bool:
        return bool(self.victim.is_pair)

    def set_identity(self, identity: str) -> None:
        """Point the cache at another model (e.g. the next mixture); entries of other identities stay."""
        self.identity = identity

    def clear(self, identity: str | None = None) -> None:
        """Forget cached scores of ``identity`` (default: every identity)."""
        if identity is None:
            self._cache.clear()
        else:
            self._cache = {k: v for k, v in self._cache.items() if k[0] != identity}

    def __len__(self) -> int:
        return len(self._cache)

    def predict_proba(self, batch: Sequence[Input]) -> np.ndarray:
        """Probabilities for ``batch``; only inputs not cached for the current identity reach the model."""
        batch = [(str(text), None if pair is None else str(pair)) for text, pair in batch]
        self.stats.lookups += len(batch)
        if not batch:
            return np.zeros((0, self.num_labels), dtype=np.float64)
        if not self.cache_enabled:
            return self._call(batch)
        keys = [(self.identity, text, pair) for text, pair in batch]
        rows = {k: self._cache[k] for k in keys if k in self._cache}
        missing = list(dict.fromkeys(k for k in keys if k not in rows))
        if missing:
            fresh = dict(zip(missing, self._call([(text, pair) for _, text, pair in missing]), strict=True))
            rows.update(fresh)
            if self.max_entries is not None and len(self._cache) + len(fresh) > self.max_entries:
                self._cache.clear()
            self._cache.update(fresh)
        return np.stack([rows[k] for k in keys])

    def predict_groups(self, groups: Sequence[Sequence[Input]]) -> tuple[list[np.ndarray], list[int]]:
        """:meth:`predict_proba` for several examples' batches in ONE call of the wrapped victim.

        Returns each group's probabilities and how many model calls (cache misses) it is charged with: an
        input missing from the cache is charged to the first group that asks for it, so the charges add
        up to what reached the model. ``stats.lookups`` grows by every input, ``stats.batches`` by one.
        """
        groups = [[(str(t), None if p is None else str(p)) for t, p in g] for g in groups]
        flat = [x for g in groups for x in g]
        owner = [i for i, g in enumerate(groups) for _ in g]
        self.stats.lookups += len(flat)
        charged = [0] * len(groups)
        if not flat:
            return [np.zeros((0, self.num_labels), dtype=np.float64) for _ in groups], charged
        if not self.cache_enabled:
            probs = self._call(flat)
            for i in owner:
                charged[i] += 1
        else:
            keys = [(self.identity, text, pair) for text, pair in flat]
            first: dict[tuple[str, str, str | None], int] = {}
            for key, i in zip(keys, owner, strict=True):
                if key not in self._cache and key not in first:
                    first[key] = i
            rows = {k: self._cache[k] for k in keys if k in self._cache}
            if first:
                missing = list(first)
                fresh = dict(zip(missing, self._call([(t, p) for _, t, p in missing]), strict=True))
                rows.update(fresh)
                if self.max_entries is not None and len(self._cache) + len(fresh) > self.max_entries:
                    self._cache.clear()
                self._cache.update(fresh)
                for i in first.values():
                    charged[i] += 1
            probs = np.stack([rows[k] for k in keys])
        bounds = np.cumsum([0, *(len(g) for g in groups)])
        return [probs[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)], charged

    def _call(self, batch: list[Input]) -> np.ndarray:
        probs = np.asarray(self.victim.predict_proba(batch), dtype=np.float64)
        if probs.shape != (len(batch), self.num_labels):
            raise ValueError(
                f"victim returned probabilities of shape {probs.shape}, expected {(len(batch), self.num_labels)}"
            )
        self.stats.model_calls += len(batch)
        self.stats.batches += 1
        return probs
