"""bf16 training on the fast path (issue 16): the adapter computes in the encoder's dtype with fp32 master
weights; a short training run's test metric stays within 1 point (or one example) of fp32, same seed."""

from __future__ import annotations

import copy

import pytest
import torch

from adaptermix.artefact import new_model
from adaptermix.backbone.loading import Encoder, cast_encoder
from adaptermix.data import load_task
from adaptermix.data.config import DataConfig
from adaptermix.methods import MethodConfig
from adaptermix.model import HeadConfig
from adaptermix.training.batching import tokenize
from adaptermix.training.config import TrainConfig
from adaptermix.training.evaluate import evaluate
from adaptermix.training.loop import train
from helpers import toy_data
from tiny import tiny_encoder


def bf16(enc: Encoder) -> Encoder:
    return cast_encoder(Encoder(enc.name, copy.deepcopy(enc.model), enc.tokenizer, enc.spec, enc.fingerprint),
                        torch.bfloat16)


@pytest.mark.parametrize("method", ["pfeiffer", "houlsby", "lora"])
def test_bf16_training_metric_within_one_point_of_fp32(method):
    task = load_task(DataConfig(**toy_data()), splits=("train", "validation", "test"))
    enc32 = tiny_encoder("bert")
    metrics, grads_dtype = {}, {}
    for name, enc in (("fp32", enc32), ("bf16", bf16(enc32))):
        torch.manual_seed(0)
        model = new_model(enc, MethodConfig(name=method, bottleneck_size=8, rank=4), HeadConfig(), task.info)
        tok = lambda split, enc=enc: tokenize(enc.tokenizer, task.split(split), 32, False)  # noqa: E731
        try:
            train(model, tok("train"), tok("validation"), task.info,
                  TrainConfig(epochs=3, batch_size=8, progress=False, learning_rate=1e-2, seed=0))
            grads_dtype[name] = {p.dtype for p in model.body.parameters()}
            metrics[name] = evaluate(model, tok("test"), task.info, 16)[task.info.metric]
        finally:
            model.detach_body()
    assert grads_dtype["bf16"] == {torch.float32}  # fp32 master weights
    n_test = len(task.split("test"))
    assert abs(metrics["bf16"] - metrics["fp32"]) <= max(0.01, 1.0 / n_test) + 1e-9, metrics
