"""End-to-end jobs behind ``adaptermix train`` and ``adaptermix eval``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from adaptermix.artefacts.artefact import (
    Adapter,
    AdapterMeta,
    load_adapter,
    model_from_adapter,
    new_model,
    save_adapter,
    task_to_dict,
)
from adaptermix.artefacts.transforms import write_derived
from adaptermix.backbone.loading import Encoder, load_encoder
from adaptermix.core.config import dump_config, validate
from adaptermix.core.errors import DataError
from adaptermix.data import load_task
from adaptermix.data.config import DataConfig
from adaptermix.data.schema import TaskData, TaskInfo
from adaptermix.model import AdapterModel
from adaptermix.training.batching import TokenizedSet, tokenize
from adaptermix.training.config import TrainRunConfig
from adaptermix.training.evaluate import evaluate
from adaptermix.training.loop import train
from adaptermix.training.metrics import baseline_metrics


def split_baselines(train_set: TokenizedSet, eval_set: TokenizedSet, info: TaskInfo) -> dict[str, float]:
    """The constant-prediction baselines (``baseline_<metric>``) of ``eval_set``, fitted on ``train_set``'s
    labels: the majority training class, or the training mean for regression."""
    return baseline_metrics(
        train_set.labels.numpy(),
        eval_set.labels.numpy(),
        info.problem == "regression",
        info.metric,
        info.secondary_metrics,
        info.num_labels,
    )

log = logging.getLogger(__name__)


@dataclass
class TrainOutcome:
    path: Path
    metrics: dict[str, dict[str, float]]
    headline: str = "accuracy"  # the task's headline metric (the one set beside its baseline)


def train_adapter(
    cfg: TrainRunConfig,
    encoder: Encoder | None = None,
    task: TaskData | None = None,
    config_hash: str | None = None,
    write_to: Path | None = None,
) -> TrainOutcome:
    """Train one adapter as configured, evaluate it on ``cfg.eval_splits``, write the artefact.

    ``encoder`` / ``task`` may be passed in to reuse an already loaded model or dataset (e.g. when a
    pipeline trains many adapters); otherwise they are loaded from the config. ``write_to`` writes the
    artefact somewhere other than ``cfg.output_dir`` (a Ray worker's scratch folder) while the config saved
    beside it still names ``cfg.output_dir``, where the driver will put it.
    """
    encoder = encoder or load_encoder(cfg.model.name, precision=cfg.model.precision)
    splits = tuple(dict.fromkeys(("train", "validation", *cfg.eval_splits)))
    task = task or load_task(cfg.data, splits=splits)
    info = task.info
    regression = info.problem == "regression"
    tok = {s: tokenize(encoder.tokenizer, task.split(s), cfg.model.max_length, regression) for s in splits}
    model = new_model(encoder, cfg.method, cfg.head, info, head_seed=cfg.train.seed)
    try:
        result = train(model, tok["train"], tok.get("validation"), info, cfg.train)
        metrics = {s: evaluate(model, tok[s], info, cfg.train.eval_batch_size) for s in cfg.eval_splits}
        for s in cfg.eval_splits:  # what a constant (majority / training-mean) prediction scores beside it
            metrics[s].update(split_baselines(tok["train"], tok[s], info))
        meta = AdapterMeta(
            method=cfg.method.model_dump(mode="json"),
            head=cfg.head.model_dump(mode="json"),
            base_model=AdapterMeta.describe_base(encoder),
            task=task_to_dict(info),
            training={
                **cfg.train.model_dump(mode="json"),
                "data": cfg.data.model_dump(mode="json", exclude_defaults=True),
                "max_length": cfg.model.max_length,
                "precision": encoder.precision,  # the encoder's resolved format during training and eval
                "train_examples": len(tok["train"]),
                "best_step": result.best_step,
                "steps": result.steps,
                "stopped_early": result.stopped_early,
                "history": result.history,
                "config_hash": config_hash,
            },
            metrics=metrics,
        )
        path = save_adapter(write_to or cfg.output_dir, model.trainable_state(), meta, {"config.yaml": dump_config(cfg)})
        # A method's derived artefacts (AdaMix: the merged adapter), written beside the one just saved.
        for derivation in model.body.derived_artefacts():
            write_derived(path, derivation)
    finally:
        model.detach_body()
    return TrainOutcome(path, metrics, info.metric)


@contextmanager
def prepared_eval(
    adapter: Adapter,
    split: str = "test",
    data: DataConfig | None = None,
    encoder: Encoder | None = None,
    max_length: int = 128,
    precision: str | None = None,
) -> Iterator[tuple[AdapterModel, TokenizedSet, TaskInfo]]:
    """The model of ``adapter`` and ``split`` of its own dataset (or of ``data``), tokenised once.

    Shared by every evaluation of one artefact (plain, and AdaMix's inference modes); the adapter body is
    detached from the encoder when the block ends. ``precision`` applies when the encoder is loaded here.
    """
    encoder = encoder or load_encoder(adapter.meta.base_model["name"], precision=precision)
    if data is None:
        data = validate(DataConfig, (adapter.meta.training or {}).get("data") or {"name": adapter.name}, "data")
    task = load_task(data, splits=(split,))
    info = adapter.meta.task_info
    if task.info.num_labels != info.num_labels:
        raise DataError(
            f"dataset {task.info.name!r} has {task.info.num_labels} labels but adapter {adapter.name!r} "
            f"has a head for {info.num_labels}"
        )
    model = model_from_adapter(adapter, encoder)
    try:
        yield model, tokenize(encoder.tokenizer, task.split(split), max_length, info.problem == "regression"), info
    finally:
        model.detach_body()


def eval_adapter(
    adapter_dir: str | Path,
    split: str = "test",
    data: DataConfig | None = None,
    encoder: Encoder | None = None,
    batch_size: int = 64,
    max_length: int = 128,
    precision: str | None = None,
) -> dict[str, float]:
    """Evaluate an artefact on ``split`` of its own dataset (or of ``data`` if given)."""
    adapter = load_adapter(adapter_dir)
    with prepared_eval(adapter, split, data, encoder, max_length, precision) as (model, tset, info):
        return evaluate(model, tset, info, batch_size)
