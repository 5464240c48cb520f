"""``adaptermix reproduce CONFIG.yaml``: the whole study, resumable, from one command."""

from __future__ import annotations

import argparse
from pathlib import Path

from adaptermix.cli.base import (
    Command,
    add_overrides,
    add_overwrite,
    add_precision,
    precision_override,
    register_command,
)
from adaptermix.core.config import load_config


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="study config (YAML), e.g. configs/demo.yaml")
    add_overrides(p)
    p.add_argument("--stages", help="comma-separated subset of stages to run (default: all configured)")
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="where training and sweeps run (ray: actors on a local or existing Ray cluster)")
    p.add_argument("--address", help="Ray cluster address (with --backend ray)")
    p.add_argument("--workers", type=int, help="Ray actors (default: one per GPU, else one per 2 CPUs)")
    add_overwrite(p)
    add_precision(p)


def load_studies(path: str, overrides: list[str]) -> list:
    """A study config, or a suite (``studies: [...]``) of several; overrides apply to each study."""
    from adaptermix.core.config import apply_overrides, read_yaml, validate
    from adaptermix.pipeline.config import StudyConfig, StudySuite

    data = read_yaml(path)
    if "studies" in data:
        suite = validate(StudySuite, data, source=path)
        return [validate(StudyConfig, apply_overrides(s.model_dump(mode="json"), overrides), source=path)
                for s in suite.studies]
    return [load_config(StudyConfig, path, overrides)]


def _run(args: argparse.Namespace) -> int:
    from adaptermix.core.config import dump_config
    from adaptermix.core.io import check_output, mark_output, output_stamp
    from adaptermix.pipeline.run import run_study

    stages = [s.strip() for s in args.stages.split(",")] if args.stages else None
    studies = load_studies(args.config, [*args.overrides, *precision_override(args)])
    stamps = []
    for cfg in studies:  # every study's folder is checked before any work starts
        stamp = output_stamp("reproduce", cfg.stamp_inputs())  # additive sections left out
        saved = Path(cfg.output_dir) / "config.yaml"  # a study resumed from before stamps existed
        same = saved.is_file() and saved.read_text(encoding="utf-8") == dump_config(cfg)
        check_output(cfg.output_dir, stamp=stamp, overwrite=args.overwrite, same=same)
        stamps.append(stamp)
    backend = None
    if args.backend == "ray":
        from adaptermix.sweep.ray_backend import ray_backend

        backend = ray_backend(address=args.address, workers=args.workers)
    for cfg, stamp in zip(studies, stamps, strict=True):
        trainer = None
        if args.backend == "ray":
            from adaptermix.pipeline.ray_train import ray_trainer

            trainer = ray_trainer(cfg.model.name, address=args.address, workers=args.workers,
                                  progress=cfg.train.progress)
        report = run_study(cfg, stages=stages, backend=backend, trainer=trainer)
        mark_output(cfg.output_dir, stamp)
        print(f"report: {report}" if report else f"done: {cfg.output_dir} (stages: {', '.join(stages or [])})")
    return 0


register_command(Command("reproduce", "run a whole study (train, FSD, sweeps, pruning, report), resumable", _args, _run))


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("study_dir", help="a study's output directory (output_dir of its config)")
    p.add_argument(
        "--exclude-near-baseline",
        action="store_true",
        help="leave targets whose adapter is within 2 points of its majority baseline out of the statistics",
    )
    add_overwrite(p)


def _report_run(args: argparse.Namespace) -> int:
    from adaptermix.core.errors import ArtefactError
    from adaptermix.core.io import check_output
    from adaptermix.report import build_report
    from adaptermix.report.build import REPORT_STAMP

    if not (Path(args.study_dir) / "config.yaml").is_file():
        raise ArtefactError(f"{args.study_dir} is not a study directory (no config.yaml)")
    check_output(Path(args.study_dir) / "report", stamp=REPORT_STAMP, overwrite=args.overwrite)
    print(f"report: {build_report(Path(args.study_dir), exclude_near_baseline=args.exclude_near_baseline)}")
    return 0


register_command(Command("report", "rebuild a study's HTML report from its stores and artefacts", _report_args, _report_run))
