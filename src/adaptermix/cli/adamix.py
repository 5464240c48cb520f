"""``adaptermix adamix {eval,merge,experiment}``: AdaMix inference modes, merging and the GLUE experiment.

Training uses the ordinary ``adaptermix train`` with ``method.name=adamix``; it writes the unmerged
artefact at ``output_dir`` and the merged one at ``<output_dir>-merged``.
"""

from __future__ import annotations

import argparse
import json

from adaptermix.cli.base import (
    Command,
    add_overrides,
    add_overwrite,
    add_precision,
    command_inputs,
    precision_override,
    register_command,
)
from adaptermix.core.io import atomic_write_json, check_output, mark_output, output_stamp

MODES = ("merged", "random", "fixed", "ensemble")


def _eval(args: argparse.Namespace) -> int:
    from adaptermix.adamix.inference import eval_adamix
    from adaptermix.artefacts.artefact import load_adapter
    from adaptermix.data.config import DataConfig
    from adaptermix.methods.adamix import AdaMixInference

    stamp = output_stamp("adamix eval", command_inputs(args, skip=("json_out", "batch_size")))
    if args.json_out:
        check_output(args.json_out, stamp=stamp, overwrite=args.overwrite, kind="file")
    adapter = load_adapter(args.adapter)
    base = dict((adapter.meta.training or {}).get("data") or {"name": adapter.name})
    if args.dataset:
        base = {"name": args.dataset}
    if args.data_dir:
        base["data_dir"] = args.data_dir
    for k in ("max_train", "max_validation", "max_test"):
        base.pop(k, None)
    if args.max_examples:
        base[f"max_{args.split}"] = args.max_examples
    data = DataConfig.model_validate(base)
    mode = AdaMixInference(args.mode)
    metrics = eval_adamix(
        args.adapter,
        mode,
        routes=args.routes,
        seed=args.seed,
        split=args.split,
        data=data,
        batch_size=args.batch_size,
        max_length=args.max_length,
        precision=args.precision,
    )
    result = {
        "adapter": args.adapter,
        "mode": mode.value,
        "split": args.split,
        "dataset": data.name,
        "metrics": metrics,
    }
    if mode is AdaMixInference.ENSEMBLE:
        result["routes"] = args.routes
    if args.json_out:
        atomic_write_json(args.json_out, result)
        mark_output(args.json_out, stamp, kind="file")
    print(json.dumps(result, indent=2))
    return 0


def _merge(args: argparse.Namespace) -> int:
    from adaptermix.artefacts.transforms import average_experts_artefact

    stamp = output_stamp("adamix merge", command_inputs(args, skip=("output",)))
    check_output(args.output, stamp=stamp, overwrite=args.overwrite)
    out = average_experts_artefact(args.adapter, args.output)
    mark_output(out, stamp)
    print(json.dumps({"adapter": str(out), "source": args.adapter}, indent=2))
    return 0


def _experiment(args: argparse.Namespace) -> int:
    from adaptermix.adamix.experiment import ExperimentConfig, run_experiment
    from adaptermix.core.config import load_config

    cfg = load_config(ExperimentConfig, args.config, [*args.overrides, *precision_override(args)])
    table = run_experiment(cfg, full=args.full, dry_run=args.dry_run, workers=args.workers)
    print(table)
    return 0


def _args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="adamix_command", metavar="SUBCOMMAND", required=True)
    ev = sub.add_parser("eval", help="evaluate an unmerged AdaMix adapter under an inference mode")
    ev.add_argument("adapter", help="unmerged AdaMix adapter directory (method 'adamix')")
    ev.add_argument(
        "--mode",
        choices=MODES,
        default="merged",
        help="merged (averaged experts), random / fixed (first expert) routing, or ensemble",
    )
    ev.add_argument(
        "--routes", type=int, default=4, help="random routes T averaged by --mode ensemble (default 4)"
    )
    ev.add_argument("--seed", type=int, default=0, help="seed of the random routes (random, ensemble)")
    ev.add_argument("--split", default="test", help="split to evaluate (default: test)")
    ev.add_argument("--dataset", help="dataset name (default: the adapter's own)")
    ev.add_argument("--data-dir", help="data pack directory (default: $ADAPTERMIX_DATA, else the embedded one)")
    ev.add_argument("--max-examples", type=int, help="evaluate a seeded, stratified sample of this size")
    ev.add_argument("--batch-size", type=int, default=64)
    ev.add_argument("--max-length", type=int, default=128)
    ev.add_argument("--json", dest="json_out", help="also write the metrics to this JSON file")
    add_overwrite(ev)
    add_precision(ev)
    ev.set_defaults(_adamix=_eval)
    mg = sub.add_parser(
        "merge", help="average the experts into one ordinary houlsby/pfeiffer adapter (Eq. 6)"
    )
    mg.add_argument("adapter", help="unmerged AdaMix adapter directory")
    mg.add_argument("-o", "--output", required=True, help="directory of the merged adapter")
    add_overwrite(mg)
    mg.set_defaults(_adamix=_merge)
    ex = sub.add_parser(
        "experiment", help="AdaMix vs Houlsby / Pfeiffer / LoRA and ablations on GLUE (resumable)"
    )
    ex.add_argument("config", help="experiment config (YAML), e.g. configs/adamix-glue.yaml")
    add_overrides(ex)
    add_precision(ex)
    ex.add_argument(
        "--full", action="store_true", help="run the full grid (every variant on all of its tasks)"
    )
    ex.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes sharing the grid, each with 1/N of the threads (2 on 2 cores: ~1.15x)",
    )
    ex.add_argument(
        "--dry-run", action="store_true", help="list the runs and the time estimate, train nothing"
    )
    ex.set_defaults(_adamix=_experiment)


def _run(args: argparse.Namespace) -> int:
    return int(args._adamix(args))


register_command(
    Command(
        "adamix",
        "AdaMix: evaluate under inference modes, merge experts, run the GLUE experiment",
        _args,
        _run,
    )
)
