"""The ``adaptermix`` console script."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from adaptermix import __version__
from adaptermix.cli.base import COMMANDS
from adaptermix.errors import AdapterMixError

# Subcommand modules; importing one registers its command.
COMMAND_MODULES = (
    "train",
    "evaluate",
    "listing",
    "mixing",
    "sweep",
    "interop",
    "attack",
    "reproduce",
    "adamix",
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``adaptermix CMD: error: ...``) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    for mod in COMMAND_MODULES:
        importlib.import_module(f"adaptermix.cli.{mod}")
    parser = _Parser(prog="adaptermix", description="Mixtures of domain-specific adapters.")
    parser.add_argument("--version", action="version", version=f"adaptermix {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors print one line and exit 2; Ctrl-C exits 130."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        return int(args._run(args) or 0)
    except AdapterMixError as exc:
        if args.verbose:
            raise
        print(f"adaptermix: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("adaptermix: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
