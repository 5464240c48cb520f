"""``adaptermix sweep``, ``stats``, ``export`` and ``merge``: the combinatorial sweep and its store."""

from __future__ import annotations

import argparse
import json

import adaptermix as am
from adaptermix.cli.base import (
    Command,
    add_overrides,
    add_overwrite,
    add_precision,
    command_inputs,
    precision_override,
    register_command,
)
from adaptermix.core.io import check_output, mark_output, output_stamp


def _sweep_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="sweep spec (YAML)")
    p.add_argument("--store", required=True, help="SQLite results store (created if missing; resumed if present)")
    p.add_argument("--shard", help="run only shard i of n (1-based), e.g. --shard 2/4")
    p.add_argument("--backend", choices=["local", "ray"], default="local")
    p.add_argument("--address", help="Ray cluster address (with --backend ray), e.g. auto or ray://host:10001")
    p.add_argument("--workers", type=int, help="Ray actors (default: one per GPU, else one per 2 CPUs)")
    p.add_argument("--dry-run", action="store_true", help="only print how many trials the spec expands to")
    p.add_argument("--no-progress", action="store_true")
    add_precision(p)
    add_overrides(p)


def _sweep_run(args: argparse.Namespace) -> int:
    from adaptermix.sweep.spec import describe_expansion, load_spec, parse_shard

    spec = load_spec(args.spec, [*args.overrides, *precision_override(args, "precision")])
    shard = parse_shard(args.shard) if args.shard else None
    names = list(spec.pool_dirs())
    for path in spec.pool_dirs().values():
        am.load_adapter(path)  # fail fast, before the encoder loads, on a missing or broken adapter
    print(f"spec expands to {describe_expansion(spec, names)}")
    if args.dry_run:
        return 0
    backend = None
    if args.backend == "ray":
        from adaptermix.sweep.ray_backend import ray_backend

        backend = ray_backend(address=args.address, workers=args.workers)
    summary = am.run_sweep(spec, args.store, progress=not args.no_progress, shard=shard, backend=backend)
    print(json.dumps({"store": str(summary.store), "trials": summary.total, "already_done": summary.skipped,
                      "ran": summary.ran, "seconds": round(summary.seconds, 1)}, indent=2))
    return 0


def _stats_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="SQLite results store")
    p.add_argument("-o", "--output-dir", help="also write one CSV per table here")
    add_overwrite(p)


def _stats_run(args: argparse.Namespace) -> int:
    from adaptermix.sweep.stats import format_tables, write_stats_csv

    stamp = output_stamp("stats", command_inputs(args, skip=("output_dir",)))
    if args.output_dir:
        check_output(args.output_dir, stamp=stamp, overwrite=args.overwrite)
    stats = am.sweep_stats(args.store)
    print(format_tables(stats))
    if args.output_dir:
        for path in write_stats_csv(stats, args.output_dir):
            print(f"wrote {path}")
        mark_output(args.output_dir, stamp)
    return 0


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="SQLite results store")
    p.add_argument("-o", "--output", required=True, help="output file: .csv or .parquet")
    p.add_argument("--table", default="trials", help="trials (default), adversarial_examples or provenance")
    add_overwrite(p)


def _export_run(args: argparse.Namespace) -> int:
    from adaptermix.sweep.export import export_store

    stamp = output_stamp("export", command_inputs(args, skip=("output",)))
    check_output(args.output, stamp=stamp, overwrite=args.overwrite, kind="file")
    n = export_store(args.store, args.output, table=args.table)
    mark_output(args.output, stamp, kind="file")
    print(f"wrote {n} rows to {args.output}")
    return 0


def _merge_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("output", help="destination store (created or extended)")
    p.add_argument("shards", nargs="+", help="shard stores to combine")


def _merge_run(args: argparse.Namespace) -> int:
    from adaptermix.sweep.shards import combine_stores

    n = combine_stores(args.output, args.shards)
    print(f"merged {n} new trials into {args.output}")
    return 0


register_command(Command("sweep", "evaluate every mixture containing each target (resumable, shardable)", _sweep_args, _sweep_run))
register_command(Command("stats", "statistics of a results store: per-k, drops, FSD correlations, greedy", _stats_args, _stats_run))
register_command(Command("export", "export a results store to CSV or Parquet", _export_args, _export_run))
register_command(Command("merge", "combine shard stores into one", _merge_args, _merge_run))
