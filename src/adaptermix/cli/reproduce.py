"""``adaptermix reproduce CONFIG.yaml``: the whole study, resumable, from one command."""

from __future__ import annotations

import argparse

from adaptermix.cli.base import Command, add_overrides, register_command
from adaptermix.config import load_config


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="study config (YAML), e.g. configs/demo.yaml")
    add_overrides(p)
    p.add_argument("--stages", help="comma-separated subset of stages to run (default: all configured)")


def _run(args: argparse.Namespace) -> int:
    from adaptermix.pipeline.config import StudyConfig
    from adaptermix.pipeline.run import run_study

    cfg = load_config(StudyConfig, args.config, args.overrides)
    stages = [s.strip() for s in args.stages.split(",")] if args.stages else None
    report = run_study(cfg, stages=stages)
    print(f"report: {report}")
    return 0


register_command(Command("reproduce", "run a whole study (train, FSD, sweeps, pruning, report), resumable", _args, _run))
