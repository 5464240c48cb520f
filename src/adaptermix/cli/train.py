"""``adaptermix train CONFIG.yaml``: train one adapter (+ head) and write its artefact."""

from __future__ import annotations

import argparse
import json

from adaptermix.cli.base import Command, add_overrides, add_precision, precision_override, register_command
from adaptermix.config import load_config


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="training config (YAML); keys may also come from --set")
    add_overrides(p)
    p.add_argument("-o", "--output-dir", help="artefact directory (overrides output_dir)")
    add_precision(p)


def _run(args: argparse.Namespace) -> int:
    from adaptermix.training.config import TrainRunConfig
    from adaptermix.training.run import train_adapter

    overrides = list(args.overrides) + ([f"output_dir={args.output_dir}"] if args.output_dir else [])
    overrides += precision_override(args)
    cfg = load_config(TrainRunConfig, args.config, overrides)
    out = train_adapter(cfg)
    print(json.dumps({"adapter": str(out.path), "metrics": out.metrics}, indent=2))
    return 0


register_command(Command("train", "train one adapter and its head on one dataset", _args, _run))
