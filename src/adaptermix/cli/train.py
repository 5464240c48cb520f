"""``adaptermix train CONFIG.yaml``: train one adapter (+ head) and write its artefact."""

from __future__ import annotations

import argparse
import json
import sys

from adaptermix.cli.base import (
    Command,
    add_overrides,
    add_overwrite,
    add_precision,
    precision_override,
    register_command,
)
from adaptermix.core.config import load_config

OWN_DATA_EPILOG = """\
your own data: set data.source=files and point data.files at CSV / TSV / JSONL files, e.g.
  adaptermix train configs/own-data.yaml     (the example files in examples/own-data/)
columns, sentence pairs, regression, label names, metrics and splits: docs/own-data.md"""


def _args(p: argparse.ArgumentParser) -> None:
    p.epilog = OWN_DATA_EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("config", nargs="?", help="training config (YAML); keys may also come from --set")
    add_overrides(p)
    p.add_argument("-o", "--output-dir", help="artefact directory (overrides output_dir)")
    add_overwrite(p)
    add_precision(p)


def _run(args: argparse.Namespace) -> int:
    from adaptermix.core.io import check_output, mark_output, output_stamp
    from adaptermix.training.config import TrainRunConfig
    from adaptermix.training.metrics import describe_against_baseline
    from adaptermix.training.run import train_adapter

    overrides = list(args.overrides) + ([f"output_dir={args.output_dir}"] if args.output_dir else [])
    overrides += precision_override(args)
    cfg = load_config(TrainRunConfig, args.config, overrides)
    # The resolved config (less where it goes) is what the artefact is made from.
    stamp = output_stamp("train", cfg.model_dump(mode="json", exclude={"output_dir"}))
    outputs = [cfg.output_dir]
    if cfg.method.name == "adamix":  # training also writes the merged adapter beside the unmerged one
        from adaptermix.artefacts.transforms import merged_path

        outputs.append(str(merged_path(cfg.output_dir)))
    for path in outputs:
        check_output(path, stamp=stamp, overwrite=args.overwrite)
    out = train_adapter(cfg)
    for path in outputs:
        mark_output(path, stamp)
    for split, values in out.metrics.items():  # the human view, beside stdout's JSON
        print(describe_against_baseline(split, out.headline, values), file=sys.stderr)
    print(json.dumps({"adapter": str(out.path), "metrics": out.metrics}, indent=2))
    return 0


register_command(Command("train", "train one adapter and its head on one dataset", _args, _run))
