"""Evaluate an unmerged AdaMix checkpoint under each inference mode of the paper's Table 3.

MERGED (averaged experts, what the merged artefact computes), RANDOM (one random route per batch, as in
training), FIXED (the first expert of every projection) and ENSEMBLE (Eq. 7: the mean of the softmax over
``routes`` random routes per example; for regression, the mean prediction). The ensemble's outputs are
the log of the averaged probabilities, so every metric that takes logits (argmax) works unchanged.

The modes and the ensemble are the method's (:mod:`adaptermix.methods.adamix.inference`); this module
runs a model over a data set under them, which needs the training package and artefact loading.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adaptermix.artefacts.artefact import load_adapter
from adaptermix.backbone.loading import Encoder
from adaptermix.core.errors import ArtefactError
from adaptermix.data.config import DataConfig
from adaptermix.data.schema import TaskInfo
from adaptermix.methods.adamix import AdaMixBody, AdaMixInference, ensemble_outputs
from adaptermix.model import AdapterModel
from adaptermix.training.batching import TokenizedSet
from adaptermix.training.evaluate import metrics_from_outputs, predict
from adaptermix.training.run import prepared_eval

__all__ = ["adamix_body", "ensemble_outputs", "eval_adamix", "evaluate_mode", "predict_mode"]


def adamix_body(model: AdapterModel) -> AdaMixBody:
    """The model's body, which must be an unmerged AdaMix body."""
    if not isinstance(model.body, AdaMixBody):
        raise ArtefactError("inference modes need an unmerged 'adamix' adapter (a merged one has no experts)")
    return model.body


def predict_mode(
    model: AdapterModel,
    tset: TokenizedSet,
    mode: AdaMixInference,
    regression: bool,
    routes: int = 4,
    seed: int = 0,
    batch_size: int = 64,
) -> np.ndarray:
    """Outputs of ``model`` on ``tset`` under inference ``mode`` (random routes seeded with ``seed``)."""
    body = adamix_body(model)
    with body.inference_mode(mode, seed):
        if mode is not AdaMixInference.ENSEMBLE:
            return predict(model, tset, batch_size)
        members = [predict(model, tset, batch_size) for _ in range(max(1, routes))]
    return ensemble_outputs(members, regression)


def evaluate_mode(
    model: AdapterModel,
    tset: TokenizedSet,
    info: TaskInfo,
    mode: AdaMixInference,
    routes: int = 4,
    seed: int = 0,
    batch_size: int = 64,
) -> dict[str, float]:
    """Task metrics of ``model`` on ``tset`` under inference ``mode``."""
    regression = info.problem == "regression"
    return metrics_from_outputs(
        predict_mode(model, tset, mode, regression, routes, seed, batch_size), tset, info
    )


def eval_adamix(
    adapter_dir: str | Path,
    mode: AdaMixInference,
    routes: int = 4,
    seed: int = 0,
    split: str = "test",
    data: DataConfig | None = None,
    encoder: Encoder | None = None,
    batch_size: int = 64,
    max_length: int = 128,
    precision: str | None = None,
) -> dict[str, float]:
    """Evaluate the unmerged AdaMix artefact ``adapter_dir`` on ``split`` of its dataset under ``mode``."""
    adapter = load_adapter(adapter_dir)
    if adapter.meta.method.get("name") != "adamix":
        raise ArtefactError(
            f"adapter {adapter_dir} is a {adapter.meta.method.get('name')!r} adapter; inference modes need an "
            "unmerged 'adamix' adapter (evaluate merged ones with 'adaptermix eval')"
        )
    with prepared_eval(adapter, split, data, encoder, max_length, precision) as (model, tset, info):
        return evaluate_mode(model, tset, info, mode, routes, seed, batch_size)
