"""``run_study``: the stages of a study in order, each resumable and skipped when already done."""

from __future__ import annotations

import logging
from pathlib import Path

from adaptermix.config import dump_config
from adaptermix.errors import ConfigError
from adaptermix.io import atomic_write_text
from adaptermix.pipeline.config import StudyConfig
from adaptermix.pipeline.train_stage import train_all, write_single_adapter_table

log = logging.getLogger(__name__)

STAGES = ("train",)


def run_study(cfg: StudyConfig, stages: list[str] | None = None) -> Path:
    """Run the requested stages (default: all) and return the path of the study's main output."""
    wanted = stages or list(STAGES)
    unknown = [s for s in wanted if s not in STAGES]
    if unknown:
        raise ConfigError(f"unknown stage {unknown[0]!r}; valid: {', '.join(STAGES)}")
    out = Path(cfg.output_dir)
    atomic_write_text(out / "config.yaml", dump_config(cfg))
    adapters = train_all(cfg, progress=cfg.train.progress)
    table = write_single_adapter_table(adapters, out / "single_adapters.md")
    return table
