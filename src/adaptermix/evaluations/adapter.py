"""Evaluation sets of an adapter's task, and one evaluation kind run on one adapter (``adaptermix attack``).

:func:`eval_rows` and :func:`tokenized_eval_set` are what a sweep evaluates a target on (the sweep runner
calls them once per target); :func:`evaluate_adapter` runs any registered kind on a single adapter or
mixture artefact — no sweep, no results store — beside its clean metrics on the same examples. The model is
built as a sweep builds it (:meth:`adaptermix.sweep.live.LiveModel.of_adapter`: the body in the encoder's
precision), so an adapter scores here what it scores as the k = 1 mixture of a sweep.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptermix.artefacts.artefact import Adapter, load_adapter
from adaptermix.backbone.loading import Encoder, load_encoder
from adaptermix.core.config import validate
from adaptermix.data import load_task
from adaptermix.data.config import DataConfig
from adaptermix.data.sampling import stratified_sample
from adaptermix.data.schema import Example
from adaptermix.evaluations.base import EvalOutcome, EvalSet
from adaptermix.evaluations.registry import EVALUATION_KINDS
from adaptermix.sweep.live import LiveModel
from adaptermix.training.batching import tokenize


def eval_rows(adapter: Adapter, split: str, max_examples: int | None = None, seed: int = 0,
              data_dir: str | None = None, label: str | None = None) -> list[Example]:
    """The ``split`` of the adapter's own training data (the data config stored in the artefact, with its
    row caps removed), capped with a seeded, stratified sample of ``max_examples``; ``data_dir`` replaces
    the data pack folder of a data-pack dataset. ``label`` names the adapter in errors (default: its name)."""
    data = dict((adapter.meta.training or {}).get("data") or {"name": adapter.name})
    for key in ("max_train", "max_validation", "max_test"):
        data.pop(key, None)
    if data_dir is not None and data.get("source", "datapack") == "datapack":
        data["data_dir"] = data_dir
    cfg = validate(DataConfig, data, source=f"data of adapter {label or adapter.name!r}")
    rows = load_task(cfg, splits=(split,)).split(split)
    return stratified_sample(rows, max_examples, seed) if max_examples is not None else rows


def tokenized_eval_set(adapter: Adapter, encoder: Encoder, rows: list[Example], max_length: int | None = None) -> EvalSet:
    """``rows`` tokenised for ``adapter``'s task, at ``max_length`` (default: the adapter's training
    length, else 128)."""
    info = adapter.meta.task_info
    length = max_length or int((adapter.meta.training or {}).get("max_length", 128))
    tokens = tokenize(encoder.tokenizer, rows, length, info.problem == "regression")
    return EvalSet(info, rows, tokens, length)


@dataclass
class AdapterEvaluation:
    """One kind on one adapter: the examples, the clean outcome and the kind's outcome on them."""

    adapter: Adapter
    kind: str
    params: dict[str, Any]
    eval_set: EvalSet
    clean: EvalOutcome
    outcome: EvalOutcome


def evaluate_adapter(
    adapter: str | Path | Adapter,
    kind: str,
    params: Mapping[str, Any] | None = None,
    *,
    split: str = "test",
    max_examples: int | None = None,
    seed: int = 0,
    data_dir: str | None = None,
    batch_size: int = 64,
    max_length: int | None = None,
    precision: str | None = None,
    encoder: Encoder | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> AdapterEvaluation:
    """Run evaluation kind ``kind`` (e.g. an attack) with ``params`` on one adapter (or mixture) artefact.

    The examples are the adapter's ``split``, a seeded stratified sample of ``max_examples``; the clean
    metrics are measured on the same examples. ``progress(done, total)`` reaches kinds that report it
    (TextFooler). Parameters are checked against the kind's config first (one-line errors)."""
    k = EVALUATION_KINDS.get(kind)
    trial_params = k.trial_params(params)
    art = adapter if isinstance(adapter, Adapter) else load_adapter(adapter)
    enc = encoder or load_encoder(art.meta.base_model["name"], precision=precision)
    es = tokenized_eval_set(art, enc, eval_rows(art, split, max_examples, seed, data_dir), max_length)
    live = LiveModel.of_adapter(enc, art)
    try:
        identity = art.name
        clean = EVALUATION_KINDS.get("clean").run(live.model, es, {}, identity, batch_size)
        extra = {"progress": progress} if k.reports_progress and progress is not None else {}
        outcome = k.run(live.model, es, trial_params, identity, batch_size, **extra)
    finally:
        live.close()
    return AdapterEvaluation(art, kind, trial_params, es, clean, outcome)
