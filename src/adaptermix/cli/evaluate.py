"""``adaptermix eval ADAPTER``: evaluate an adapter artefact on a split of a dataset."""

from __future__ import annotations

import argparse
import json

from adaptermix.cli.base import Command, add_overwrite, add_precision, command_inputs, register_command
from adaptermix.io import atomic_write_json, check_output, mark_output, output_stamp


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("adapter", help="adapter directory (adapter.safetensors + adapter.json)")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument("--dataset", help="dataset name (default: the adapter's own)")
    p.add_argument("--data-dir", help="data pack directory (default: $ADAPTERMIX_DATA, else the embedded one)")
    p.add_argument("--max-examples", type=int, help="evaluate a seeded, stratified sample of this size")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--json", dest="json_out", help="also write the metrics to this JSON file")
    add_overwrite(p)
    add_precision(p)


def _run(args: argparse.Namespace) -> int:
    from adaptermix.artefact import load_adapter
    from adaptermix.config import validate
    from adaptermix.data.config import DataConfig
    from adaptermix.training.run import eval_adapter

    stamp = output_stamp("eval", command_inputs(args, skip=("json_out", "batch_size")))
    if args.json_out:
        check_output(args.json_out, stamp=stamp, overwrite=args.overwrite, kind="file")
    adapter = load_adapter(args.adapter)
    base = dict((adapter.meta.training or {}).get("data") or {"name": adapter.name})
    if args.dataset:
        base = {"name": args.dataset}
    if args.data_dir and base.get("source", "datapack") == "datapack":
        base["data_dir"] = args.data_dir
    for k in ("max_train", "max_validation", "max_test"):
        base.pop(k, None)
    if args.max_examples:
        base[f"max_{args.split}"] = args.max_examples
    data = validate(DataConfig, base, source="data")
    metrics = eval_adapter(args.adapter, args.split, data, batch_size=args.batch_size, max_length=args.max_length,
                           precision=args.precision)
    result = {"adapter": args.adapter, "split": args.split, "dataset": data.name, "metrics": metrics}
    if args.json_out:
        atomic_write_json(args.json_out, result)
        mark_output(args.json_out, stamp, kind="file")
    print(json.dumps(result, indent=2))
    return 0


register_command(Command("eval", "evaluate an adapter on a split (accuracy, F1, MCC, Pearson ...)", _args, _run))
