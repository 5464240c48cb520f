"""``adaptermix doctor``: check every external resource and print how to fix what is missing."""

from __future__ import annotations

import argparse
import json

from adaptermix.cli.base import Command, register_command


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output: {ok, checks: [...]}")
    p.add_argument("--quick", action="store_true",
                   help="check large data files for presence only (no SHA-256)")
    p.add_argument("--data-dir", default=None, help="data pack folder (default: $ADAPTERMIX_DATA)")
    p.add_argument("--cache-dir", default=None,
                   help="cache folder (default: $ADAPTERMIX_CACHE, else ~/.cache/adaptermix)")
    p.add_argument("--wordnet-dir", default=None, help="WordNet database folder (default: /usr/share/wordnet)")


def _run(args: argparse.Namespace) -> int:
    from adaptermix.doctor import format_table, healthy, run_checks, to_json

    checks = run_checks(
        data_dir=args.data_dir, cache_dir=args.cache_dir, wordnet_source=args.wordnet_dir, quick=args.quick
    )
    print(json.dumps(to_json(checks), indent=2) if args.json else format_table(checks))
    return 0 if healthy(checks) else 1


register_command(
    Command(
        "doctor",
        "check every external resource (encoder, GloVe, WordNet, data pack, system packages, device); "
        "exit 1 if something `make demo`/`make test` need is missing",
        _args,
        _run,
    )
)
