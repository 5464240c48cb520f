"""Shared CLI plumbing: the command registry and common options.

Each subcommand is a thin module: parse -> validate config -> call one library function -> print.
Library code never reads ``sys.argv``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptermix.registry import Registry


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


def add_precision(p: argparse.ArgumentParser) -> None:
    """``--precision``: the frozen encoder's format (see :func:`adaptermix.device.resolve_precision`)."""
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
