"""Shared CLI plumbing: the command registry and common options.

Each subcommand is a thin module: parse -> validate config -> call one library function -> print.
Library code never reads ``sys.argv``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptermix.core.registry import Registry


@dataclass(frozen=True)
class Command:
    """A subcommand: help line, argument definitions and the function that runs it (returns exit code)."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: Registry[Command] = Registry("command")


def register_command(cmd: Command) -> Command:
    return COMMANDS.register(cmd.name, cmd)


class RegistryNames(Sequence[str]):
    """The names a registry (or a plug-in module's constant) knows, read each time they are needed, never when
    the parser is built: building every subcommand's parser must not import plug-ins (torch, scipy), and a
    plug-in registered later (a test's toy, a user's module) appears.

    As ``choices=`` (with a ``metavar``, else argparse lists the choices while building): a value is checked
    against the registry at parse time and an invalid one is answered with the current names. As
    ``names=`` of :class:`Listed`: the help shows them (``%(names)s``) without restricting the value, for
    options whose unknown values the library itself answers with a one-line error.
    """

    def __init__(self, load: Callable[[], Iterable[str]]) -> None:
        self._load = load

    def _names(self) -> tuple[str, ...]:
        return tuple(self._load())

    def __contains__(self, value: object) -> bool:
        return value in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __getitem__(self, i: Any) -> Any:
        return self._names()[i]

    def __str__(self) -> str:
        return ", ".join(self._names())


class Listed(argparse._StoreAction):
    """A plain store option whose help may name ``%(names)s`` (a :class:`RegistryNames`), expanded when the
    help is shown."""

    def __init__(self, *args: Any, names: RegistryNames, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.names = names


def _strategies() -> list[str]:
    from adaptermix.recommend.search import STRATEGIES

    return STRATEGIES.names()


def _evaluation_kinds() -> list[str]:
    from adaptermix.evaluations.registry import EVALUATION_KINDS

    return EVALUATION_KINDS.names()


def _merge_rules() -> list[str]:
    from adaptermix.merging import MERGE_RULES

    return MERGE_RULES.names()


def _param_spaces() -> list[str]:
    from adaptermix.deltas import SPACES

    return list(SPACES)


def _mix_spaces() -> list[str]:
    from adaptermix.artefacts.task_vectors import SPACES as TV_SPACES
    from adaptermix.deltas import SPACES

    return list(dict.fromkeys([*TV_SPACES, *SPACES]))


def _prune_scopes() -> list[str]:
    from adaptermix.pruning import SCOPES

    return list(SCOPES)


def _predictor_models() -> list[str]:
    from adaptermix.recommend.predictor import MODELS

    return list(MODELS)


STRATEGY_NAMES = RegistryNames(_strategies)
EVALUATION_NAMES = RegistryNames(_evaluation_kinds)
RULE_NAMES = RegistryNames(_merge_rules)
PARAM_SPACES = RegistryNames(_param_spaces)  # raw parameters or LoRA updates (adaptermix.deltas)
MIX_SPACES = RegistryNames(_mix_spaces)  # ... and task vectors (adaptermix.artefacts.task_vectors)
PRUNE_SCOPES = RegistryNames(_prune_scopes)
PREDICTOR_MODELS = RegistryNames(_predictor_models)


def add_precision(p: argparse.ArgumentParser) -> None:
    """``--precision``: the frozen encoder's format (see :func:`adaptermix.core.device.resolve_precision`)."""
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"],
                   help="encoder precision: auto = bf16 where the device computes it fast (AMX/AVX-512 bf16 "
                        "CPUs, bf16 GPUs), else fp32 (default: $ADAPTERMIX_PRECISION or auto)")


def precision_override(args: argparse.Namespace, key: str = "model.precision") -> list[str]:
    """``--set``-style override for ``--precision`` (none when the flag was not given)."""
    return [f"{key}={args.precision}"] if getattr(args, "precision", None) else []


def add_overrides(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=2 (repeatable)")


def add_overwrite(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing output even if this command did not write it from the same inputs")


def _normalise(value: Any) -> Any:
    """Paths that exist become absolute (``a`` and ``./a`` are the same input); lists element-wise."""
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    if isinstance(value, str) and value and Path(value).exists():
        return os.path.abspath(value)
    return value


def command_inputs(args: argparse.Namespace, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The arguments that define a command's result (for its output stamp): every option except the
    output itself (``skip``), ``--overwrite`` and cosmetic ones, with existing paths made absolute."""
    drop = {"overwrite", "verbose", "command", *skip}
    return {k: _normalise(v) for k, v in sorted(vars(args).items()) if not k.startswith("_") and k not in drop}
