"""``run_study``: the stages of a study in order, each resumable and skipped when already done.

train -> fsd -> sweep (clean, FGSM, TextFooler; the rule comparison's all-domain mixtures) -> greedy (Alg. 1,
AdapterSoup's selections) -> pruning (Alg. 2 / 4, Fig. 8) -> analysis (dataset similarity, LDA topics) ->
report (figures, tables, statements, HTML).
Killing the pipeline and starting it again continues where it stopped: finished adapters are reused,
finished trials are skipped, and outputs are written atomically.
"""

from __future__ import annotations

import logging
from pathlib import Path

from adaptermix.backbone.loading import load_encoder
from adaptermix.core.config import dump_config
from adaptermix.core.errors import ConfigError
from adaptermix.core.io import atomic_write_text
from adaptermix.pipeline.config import StudyConfig
from adaptermix.pipeline.stages import (
    MethodPool,
    rule_plan,
    run_sweep_stage,
    set_aside_stale_store,
    write_fsd,
)
from adaptermix.pipeline.train_stage import Trainer, train_all, write_single_adapter_table
from adaptermix.sweep.runner import Backend

log = logging.getLogger(__name__)

STAGES = ("train", "fsd", "sweep", "greedy", "pruning", "analysis", "report")


def _say(msg: str) -> None:
    print(f"adaptermix: {msg}", flush=True)


def run_study(
    cfg: StudyConfig, stages: list[str] | None = None, backend: Backend | None = None, trainer: Trainer | None = None
) -> Path | None:
    """Run the requested stages (default: all, in order); the report's ``index.html``, if it was built.

    ``backend`` runs the sweeps and ``trainer`` the training (default for both: this process).
    """
    wanted = stages or list(STAGES)
    unknown = [s for s in wanted if s not in STAGES]
    if unknown:
        raise ConfigError(f"unknown stage {unknown[0]!r}; valid: {', '.join(STAGES)}")
    for method in cfg.methods:  # a rule no sweep can run: one line now, not after the training
        rule_plan(cfg, method)
    out = Path(cfg.output_dir)
    atomic_write_text(out / "config.yaml", dump_config(cfg))
    progress = cfg.train.progress
    encoder = load_encoder(cfg.model.name, precision=cfg.model.precision)
    # Training is never skipped: later stages need the adapters, and finished ones are reused anyway.
    reps = cfg.noise_floor.replicates if cfg.noise_floor is not None else 0
    _say(f"stage train: {len(cfg.methods)} method(s) x {len(cfg.domains)} domain(s)"
         + (f" + {reps} noise-floor replicate(s) each" if reps else ""))
    trained = train_all(cfg, encoder=encoder, progress=progress, trainer=trainer)
    adapters = [a for a in trained if a.replicate == 0]
    write_single_adapter_table(adapters, out / "single_adapters.md")
    pools = []
    for label in dict.fromkeys(a.method for a in adapters):
        replicas = {f"{a.domain}~r{a.replicate}": (a.domain, a.path) for a in trained if a.method == label and a.replicate}
        pools.append(MethodPool(label, {a.domain: a.path for a in adapters if a.method == label}, replicas))
    # Method-major: each method's stages all run before the next method's, so a study stopped part-way
    # has whole methods (every figure of a method needs its sweep, greedy and pruning results).
    for mp in pools:
        if any(s in wanted for s in ("sweep", "greedy", "pruning")):
            set_aside_stale_store(cfg, mp, _say)  # once per method, before its first trial is skipped
        for stage in ("fsd", "sweep", "greedy", "pruning"):
            if stage not in wanted:
                continue
            if stage == "fsd":
                _say(f"stage fsd: {write_fsd(cfg, mp)}")
            elif stage != "sweep" or cfg.sweep.enabled:
                _say(f"stage {stage} [{mp.label}]")
                run_sweep_stage(cfg, mp, stage, encoder, backend, progress, _say)
    if "analysis" in wanted and cfg.analysis.enabled:
        from adaptermix.analysis import write_similarity, write_topics

        _say("stage analysis: dataset similarity and LDA topics")
        write_similarity(out, cfg)
        write_topics(out, cfg)
    if "report" not in wanted:
        return None
    from adaptermix.report import build_report

    index = build_report(out)
    _say(f"report written: {index}")
    return index
