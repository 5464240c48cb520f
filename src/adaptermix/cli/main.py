"""The ``adaptermix`` console script."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import NoReturn

from adaptermix._version import __version__
from adaptermix.cli.base import COMMANDS
from adaptermix.core.errors import AdapterMixError
from adaptermix.core.signals import exit_on_sigterm

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
    "doctor",
    "recommend",
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``adaptermix CMD: error: ...``) and exit status 2."""

    def error(self, message: str) -> NoReturn:
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
    """Entry point: user errors print one line and exit 2; Ctrl-C exits 130, SIGTERM 143 (both after
    cleanups ran); a closed pipe exits 141."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        with exit_on_sigterm():
            code = int(args._run(args) or 0)
        sys.stdout.flush()  # a closed pipe surfaces here, inside the handler, not at interpreter exit
        return code
    except AdapterMixError as exc:
        if args.verbose:
            raise
        print(f"adaptermix: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("adaptermix: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:
        if exc.code == 143:  # SIGTERM, turned into an exit by exit_on_sigterm after cleanups ran
            print("adaptermix: terminated", file=sys.stderr)
        raise
    except BrokenPipeError:
        # The reader went away (``adaptermix ... | head``): stop quietly, as Unix tools do, instead of a
        # traceback. Point stdout at /dev/null so the interpreter's final flush cannot raise again
        # (the recipe of the Python docs, "Note on SIGPIPE").
        _silence_stdout()
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by the signal


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # stdout replaced by an object without a descriptor
        pass


if __name__ == "__main__":
    sys.exit(main())
