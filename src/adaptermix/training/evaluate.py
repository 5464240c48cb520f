"""Batched, length-bucketed evaluation under ``torch.inference_mode``."""

from __future__ import annotations

import numpy as np
import torch

from adaptermix.backbone.prefix import FrozenPrefix
from adaptermix.data.schema import TaskInfo
from adaptermix.model import AdapterModel
from adaptermix.training.batching import TokenizedSet, eval_batches
from adaptermix.training.metrics import compute_metrics


def predict(model: AdapterModel, tset: TokenizedSet, batch_size: int = 64,
            prefix: FrozenPrefix | None = None) -> np.ndarray:
    """Model outputs for every example of ``tset`` in its original order ([n, num_labels]).

    ``prefix``: a frozen-prefix cache of ``model`` for ``tset`` (one per evaluation set: its entries are
    keyed by batch size and batch index), e.g. a sweep's per-target cache; identical outputs."""
    was_training = model.training
    model.eval()
    out: np.ndarray | None = None
    with torch.inference_mode():
        for i, (idx, batch) in enumerate(eval_batches(tset, batch_size)):
            cached = {"prefix": prefix, "prefix_key": (batch_size, i)} if prefix is not None else {}
            logits = model(**batch, **cached).float().cpu().numpy()
            if out is None:
                out = np.zeros((len(tset), logits.shape[1]), dtype=np.float32)
            out[idx] = logits
    model.train(was_training)
    return out if out is not None else np.zeros((0, 1), dtype=np.float32)


def evaluate(model: AdapterModel, tset: TokenizedSet, info: TaskInfo, batch_size: int = 64,
             prefix: FrozenPrefix | None = None) -> dict[str, float]:
    """Metrics of ``model`` on ``tset``: the standard set for the problem type plus the task's headline."""
    outputs = predict(model, tset, batch_size, prefix)
    return metrics_from_outputs(outputs, tset, info)


def metrics_from_outputs(outputs: np.ndarray, tset: TokenizedSet, info: TaskInfo) -> dict[str, float]:
    regression = info.problem == "regression"
    return compute_metrics(tset.labels.numpy(), outputs, regression, info.metric, info.secondary_metrics)
