"""Stage 1 of a study: train one adapter per (method, domain), skipping artefacts that already match.

An artefact is reused when its ``adapter.json`` records the same config hash; a changed config retrains
it. Each adapter is written atomically, so a kill loses at most the adapter in training.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from adaptermix.artefact import META, load_adapter
from adaptermix.backbone.loading import Encoder, load_encoder
from adaptermix.errors import ArtefactError
from adaptermix.io import atomic_write_text
from adaptermix.pipeline.config import StudyConfig, config_hash
from adaptermix.training.run import train_adapter

log = logging.getLogger(__name__)


@dataclass
class TrainedAdapter:
    method: str
    domain: str
    path: Path
    metrics: dict[str, dict[str, float]]
    reused: bool


def adapter_dir(cfg: StudyConfig, method_label: str, domain: str) -> Path:
    return Path(cfg.output_dir) / "adapters" / method_label / domain


def _matching(path: Path, want_hash: str) -> dict[str, dict[str, float]] | None:
    if not (path / META).is_file():
        return None
    try:
        adapter = load_adapter(path)
    except ArtefactError:
        return None
    if (adapter.meta.training or {}).get("config_hash") != want_hash:
        return None
    return adapter.meta.metrics


def train_all(cfg: StudyConfig, encoder: Encoder | None = None, progress: bool = True) -> list[TrainedAdapter]:
    """Train (or reuse) every adapter of the study; returns them in (method, domain) order."""
    jobs = [(m, d) for m in cfg.methods for d in cfg.domains]
    out: list[TrainedAdapter] = []
    bar = tqdm(jobs, desc="train adapters", unit="adapter", disable=not progress)
    for method, domain in bar:
        label = cfg.method_label(method)
        run = cfg.train_run(method, domain, "")
        path = adapter_dir(cfg, label, run.data.name)
        run = run.model_copy(update={"output_dir": str(path)})
        h = config_hash(run)
        bar.set_postfix_str(f"{label}/{run.data.name}")
        metrics = _matching(path, h)
        if metrics is not None:
            out.append(TrainedAdapter(label, run.data.name, path, metrics, reused=True))
            continue
        encoder = encoder or load_encoder(cfg.model.name)
        result = train_adapter(run, encoder=encoder, config_hash=h)
        out.append(TrainedAdapter(label, run.data.name, result.path, result.metrics, reused=False))
    return out


def single_adapter_table(adapters: list[TrainedAdapter], split: str = "test") -> str:
    """Markdown table: the headline test metric of each single adapter, domains x methods."""
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
            vals.append(f"{v:.3f}" if v is not None else "–")
        lines.append(f"| {d} | {metric} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


def _headline_name(a: TrainedAdapter) -> str:
    meta = load_adapter(a.path).meta
    return str(meta.task.get("metric", "accuracy"))


def write_single_adapter_table(adapters: list[TrainedAdapter], out: Path) -> Path:
    atomic_write_text(out, single_adapter_table(adapters))
    return out
