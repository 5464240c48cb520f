"""Execute one run of the AdaMix experiment, and estimate what a run costs.

A run is the ordinary training job (:func:`adaptermix.training.run.train_adapter`, which for AdaMix also
writes the merged adapter; skipped when the adapter is already there with the same training key),
followed for the inference variant by evaluations of the unmerged checkpoint
under the other inference modes. The encoder and every task's (capped) data are loaded once.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adaptermix.adamix.inference import evaluate_mode
from adaptermix.artefacts.artefact import META, load_adapter, model_from_adapter
from adaptermix.artefacts.transforms import merged_path
from adaptermix.backbone.loading import Encoder, load_encoder
from adaptermix.data import load_task
from adaptermix.data.config import DataConfig
from adaptermix.data.schema import SPLITS, TaskData
from adaptermix.methods.adamix import AdaMixInference, merge_expert_tensors
from adaptermix.methods.config import AdaMixConfig
from adaptermix.training.batching import tokenize
from adaptermix.training.resume import reusable_metrics, training_key
from adaptermix.training.run import TrainOutcome, train_adapter

if TYPE_CHECKING:
    from adaptermix.adamix.experiment import ExperimentConfig, Run

EVAL_SPEEDUP = 3.0  # a forward pass costs about a third of a training step (forward + backward)


@dataclass
class Assets:
    """What every run shares: the encoder, each task's capped data and its token counts per split."""

    encoder: Encoder
    tasks: dict[str, TaskData]
    tokens: dict[str, dict[str, int]]


def load_assets(cfg: ExperimentConfig, tasks: list[str]) -> Assets:
    encoder = load_encoder(cfg.model.name, precision=cfg.model.precision)
    data, tokens = {}, {}
    for name in tasks:
        dcfg = DataConfig(
            name=name,
            data_dir=cfg.data_dir,
            max_train=cfg.max_train,
            max_validation=cfg.max_validation,
            max_test=cfg.max_test,
        )
        task = load_task(dcfg, splits=SPLITS)
        regression = task.info.problem == "regression"
        data[name] = task
        tokens[name] = {
            s: sum(tokenize(encoder.tokenizer, task.split(s), cfg.model.max_length, regression).lengths())
            for s in SPLITS
        }
    return Assets(encoder, data, tokens)


def make_executor(
    cfg: ExperimentConfig, tasks: list[str], assets: Assets | None = None
) -> Callable[[Run], dict[str, Any]]:
    """The real executor: the encoder and the tasks loaded once (or ``assets`` already loaded, e.g. for
    the time estimate), then run after run trained on them."""
    loaded = assets if assets is not None else load_assets(cfg, tasks)
    return lambda run: execute_run(run, loaded, cfg)


def estimate_seconds(run: Run, assets: Assets, train_tokens_per_s: float, routes: int = 4) -> float:
    """Rough wall time of ``run``: tokens trained (x2 passes with consistency) and evaluated, over throughput."""
    tok = assets.tokens[run.task]
    method = run.cfg.method
    passes = 2 if isinstance(method, AdaMixConfig) and method.adamix.consistency_weight > 0 else 1
    epochs = run.cfg.train.epochs
    extra_test = sum(routes if m == "ensemble" else 1 for m in run.modes)
    evaluated = tok["validation"] * math.ceil(epochs) + tok["test"] * (1 + extra_test)
    return (tok["train"] * epochs * passes + evaluated / EVAL_SPEEDUP) / train_tokens_per_s


def _count(tensors: dict[str, Any]) -> int:
    return int(sum(t.numel() for k, t in tensors.items() if not k.startswith("head.")))


def execute_run(run: Run, assets: Assets, cfg: ExperimentConfig) -> dict[str, Any]:
    """Train, evaluate (and for the inference variant, evaluate each mode); return the result record.

    The training is resumable by the config-hash logic of a study's trainings
    (:mod:`adaptermix.training.resume`): an adapter already at the run's folder with the same training key
    (and, for AdaMix, its merged sibling) is reused, e.g. after a kill while the modes were evaluated."""
    key = training_key(run.cfg)
    path = Path(run.cfg.output_dir)
    derived_ok = run.cfg.method.name != "adamix" or (merged_path(path) / META).is_file()
    reused = reusable_metrics(path, key)
    t0 = time.perf_counter()
    if reused is not None and derived_ok:
        out = TrainOutcome(path, reused)
        train_s = None
    else:
        out = train_adapter(run.cfg, encoder=assets.encoder, task=assets.tasks[run.task], config_hash=key)
        train_s = round(time.perf_counter() - t0, 1)
    adapter = load_adapter(out.path)
    info = adapter.meta.task_info
    training = adapter.meta.training or {}
    is_adamix = run.cfg.method.name == "adamix"
    result: dict[str, Any] = {
        "variant": run.variant,
        "task": run.task,
        "seed": run.seed,
        "metric": info.metric,
        "test": out.metrics["test"],
        "modes": {},
        "best_validation": max(
            (h.get(info.metric, float("-inf")) for h in training.get("history", [])), default=None
        ),
        "best_step": training.get("best_step"),
        "steps": training.get("steps"),
        "train_examples": training.get("train_examples"),
        "params_trained": _count(adapter.tensors),
        "params_inference": _count(merge_expert_tensors(adapter.tensors) if is_adamix else adapter.tensors),
        "method": run.cfg.method.model_dump(mode="json"),
        "train_seconds": train_s,  # None: the adapter was reused, not trained by this run
        "adapter": str(out.path) if cfg.keep_adapters else None,
    }
    if run.modes:
        t1 = time.perf_counter()
        model = model_from_adapter(adapter, assets.encoder)
        try:
            regression = info.problem == "regression"
            tset = tokenize(
                assets.encoder.tokenizer,
                assets.tasks[run.task].split("test"),
                cfg.model.max_length,
                regression,
            )
            for mode in run.modes:
                result["modes"][mode] = evaluate_mode(
                    model,
                    tset,
                    info,
                    AdaMixInference(mode),
                    routes=cfg.inference.routes,
                    seed=cfg.inference.seed,
                    batch_size=run.cfg.train.eval_batch_size,
                )
        finally:
            model.detach_body()
        result["modes_seconds"] = round(time.perf_counter() - t1, 1)
    if not cfg.keep_adapters:
        shutil.rmtree(out.path, ignore_errors=True)
        shutil.rmtree(merged_path(out.path), ignore_errors=True)
    return result
