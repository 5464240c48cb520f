"""Stage 1 of a study: train one adapter per (method, domain), skipping artefacts that already match.

An artefact is reused when its ``adapter.json`` records the same key (the config's hash and the data's
contents, :func:`adaptermix.training.resume.training_key`); a changed config or changed data retrains it.
Each adapter is written atomically, so a kill loses at most the adapter in training. Jobs run on the
package's job engine (:mod:`adaptermix.core.jobs`, as the AdaMix experiment does): each is claimed
(``<artefact dir>.claim``) while it trains, so two processes of one study never train the same adapter,
and one waits for an adapter another is training instead of training it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from adaptermix.artefacts.artefact import load_adapter
from adaptermix.backbone.loading import Encoder, load_encoder
from adaptermix.core.errors import ArtefactError
from adaptermix.core.io import atomic_write_text
from adaptermix.core.jobs import JobGrid, work_through
from adaptermix.pipeline.config import StudyConfig
from adaptermix.training.config import TrainRunConfig
from adaptermix.training.metrics import is_near
from adaptermix.training.resume import reusable_metrics as _matching
from adaptermix.training.resume import training_key as training_key  # re-exported: its old home
from adaptermix.training.run import train_adapter

log = logging.getLogger(__name__)


@dataclass
class TrainedAdapter:
    method: str
    domain: str
    path: Path
    metrics: dict[str, dict[str, float]]
    reused: bool
    replicate: int = 0  # > 0: a noise-floor replicate of the domain's adapter (see NoiseFloorStage)


@dataclass(frozen=True)
class TrainJob:
    """One adapter to train: its fully resolved run config (``output_dir`` = its artefact folder)."""

    label: str
    run: TrainRunConfig
    config_hash: str
    replicate: int = 0

    @property
    def domain(self) -> str:
        return self.run.data.name

    @property
    def key(self) -> tuple[str, str, int]:
        return self.label, self.domain, self.replicate

    @property
    def path(self) -> Path:
        return Path(self.run.output_dir)


#: Trains ``jobs`` and calls ``done(job, metrics)`` once each artefact is in place at ``job.path``.
Trainer = Callable[[list[TrainJob], Callable[[TrainJob, dict[str, dict[str, float]]], None]], None]


def adapter_dir(cfg: StudyConfig, method_label: str, domain: str, replicate: int = 0) -> Path:
    """``adapters/<method>/<domain>``; noise-floor replicates in ``adapters/<method>/replicates/<domain>-r<k>``
    (one level deeper, so that nothing that lists the domain adapters mistakes them for domains)."""
    root = Path(cfg.output_dir) / "adapters" / method_label
    return root / domain if replicate == 0 else root / REPLICATES / f"{domain}-r{replicate}"


REPLICATES = "replicates"


def plan_training(cfg: StudyConfig) -> tuple[list[TrainJob], dict[tuple[str, str, int], TrainedAdapter]]:
    """Every (method, domain) job in order, then the noise-floor replicates (if configured), and the finished
    ones (artefact present, same config hash), keyed by :attr:`TrainJob.key`."""
    jobs: list[TrainJob] = []
    done: dict[tuple[str, str, int], TrainedAdapter] = {}
    replicates = range(1, cfg.noise_floor.replicates + 1) if cfg.noise_floor is not None else range(0)
    plan = [(method, domain, 0) for method in cfg.methods for domain in cfg.domains]
    plan += [(method, domain, r) for r in replicates for method in cfg.methods for domain in cfg.domains
             if cfg.noise_floor is not None and cfg.noise_floor.covers(cfg.method_label(method), method.name)]
    for method, domain, rep in plan:
        label = cfg.method_label(method)
        run = cfg.train_run(method, domain, "") if rep == 0 else cfg.replicate_run(method, domain, rep, "")
        path = adapter_dir(cfg, label, run.data.name, rep)
        run = run.model_copy(update={"output_dir": str(path)})
        job = TrainJob(label, run, training_key(run), rep)
        jobs.append(job)
        metrics = _matching(path, job.config_hash)
        if metrics is not None:
            done[job.key] = TrainedAdapter(label, job.domain, path, metrics, reused=True, replicate=rep)
    return jobs, done


def claim_path(job: TrainJob) -> Path:
    """A training job's claim: ``<artefact dir>.claim``, beside the folder the adapter is written to."""
    return job.path.with_name(job.path.name + ".claim")


def local_trainer(model_name: str, encoder: Encoder | None = None, progress: bool = True) -> Trainer:
    """Train jobs one after another in this process, loading the encoder once (on first need).

    The jobs go through the job engine: an adapter that another process of the same study (a second
    `reproduce`) trained meanwhile is reused, and one it is training now is waited for, not trained twice.
    """

    def trainer(pending: list[TrainJob], done: Callable[[TrainJob, dict[str, dict[str, float]]], None]) -> None:
        bar = tqdm(total=len(pending), desc="train adapters", unit="adapter", disable=not progress)
        reported: set[tuple[str, str, int]] = set()

        def execute(job: TrainJob) -> dict[str, dict[str, float]]:
            nonlocal encoder
            bar.set_postfix_str(f"{job.label}/{job.domain}")
            encoder = encoder or load_encoder(model_name, precision=job.run.model.precision)
            return train_adapter(job.run, encoder=encoder, config_hash=job.config_hash).metrics

        def record(job: TrainJob, metrics: dict[str, dict[str, float]]) -> None:
            done(job, metrics)  # the artefact itself was written atomically by train_adapter
            reported.add(job.key)
            bar.update()

        def is_done(job: TrainJob) -> bool:
            return _matching(job.path, job.config_hash) is not None

        try:
            work_through(pending, JobGrid(is_done, claim_path, execute, record), wait_for_others=True)
        finally:
            bar.close()
        for job in (j for j in pending if j.key not in reported):  # trained meanwhile by another process
            ready = _matching(job.path, job.config_hash)
            if ready is not None:
                done(job, ready)

    return trainer


def train_all(
    cfg: StudyConfig, encoder: Encoder | None = None, progress: bool = True, trainer: Trainer | None = None
) -> list[TrainedAdapter]:
    """Train (or reuse) every adapter of the study; returns them in (method, domain) order, the noise-floor
    replicates (``replicate`` > 0) last.

    ``trainer`` decides where the missing ones train (default: here, one after another; see
    :func:`adaptermix.pipeline.ray_train.ray_trainer` for a Ray cluster).
    """
    jobs, finished = plan_training(cfg)
    pending = [j for j in jobs if j.key not in finished]
    if pending:
        log.info("training %d of %d adapters (%d reused)", len(pending), len(jobs), len(finished))

        def done(job: TrainJob, metrics: dict[str, dict[str, float]]) -> None:
            finished[job.key] = TrainedAdapter(job.label, job.domain, job.path, metrics, False, job.replicate)

        (trainer or local_trainer(cfg.model.name, encoder, progress))(pending, done)
    missing = [f"{j.label}/{j.domain}" for j in jobs if j.key not in finished]
    if missing:
        raise ArtefactError(f"training finished without the adapters {', '.join(missing)}")
    return [finished[j.key] for j in jobs]


def single_adapter_table(adapters: list[TrainedAdapter], split: str = "test") -> str:
    """Markdown table: the headline test metric of each single adapter, domains x methods, with its
    constant-prediction baseline (flagged ⚠ when within 2 points of it)."""
    methods = list(dict.fromkeys(a.method for a in adapters))
    domains = list(dict.fromkeys(a.domain for a in adapters))
    cell = {(a.method, a.domain): a for a in adapters}
    lines = ["| dataset | metric | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for d in domains:
        first = next(cell[(m, d)] for m in methods if (m, d) in cell)
        metric = _headline_name(first)
        vals = []
        for m in methods:
            a = cell.get((m, d))
            v = a.metrics.get(split, {}).get(metric) if a else None
            base = a.metrics.get(split, {}).get(f"baseline_{metric}") if a else None
            text = f"{v:.3f}" if v is not None else "–"
            if v is not None and base is not None:  # the majority / training-mean baseline beside it
                text += f" (baseline {base:.3f}{', ⚠ within 2 pts' if is_near(v, base, metric) else ''})"
            vals.append(text)
        lines.append(f"| {d} | {metric} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


def _headline_name(a: TrainedAdapter) -> str:
    meta = load_adapter(a.path).meta
    return str(meta.task.get("metric", "accuracy"))


def write_single_adapter_table(adapters: list[TrainedAdapter], out: Path) -> Path:
    atomic_write_text(out, single_adapter_table(adapters))
    return out
