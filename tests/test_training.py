"""The training loop on a tiny model: learns a trivially learnable task, deterministic, frozen encoder."""

from __future__ import annotations

import torch

from adaptermix.artefact import new_model
from adaptermix.data.schema import Example, TaskInfo
from adaptermix.methods import MethodConfig
from adaptermix.model import HeadConfig
from adaptermix.training.batching import eval_batches, tokenize, train_batches
from adaptermix.training.config import TrainConfig
from adaptermix.training.evaluate import evaluate
from adaptermix.training.loop import train
from tiny import tiny_encoder

INFO = TaskInfo("toy", "single", "classification", ("neg", "pos"))
POS = ["good movie", "great film", "fun plot", "nice acting", "excellent story", "best music"]
NEG = ["bad movie", "awful film", "boring plot", "poor acting", "terrible story", "worst music"]


def _data(n: int = 48) -> list[Example]:
    rows = [Example(t, 1) for t in POS] + [Example(t, 0) for t in NEG]
    return (rows * (n // len(rows) + 1))[:n]


def _train(seed: int, method: str = "pfeiffer"):
    enc = tiny_encoder("bert")
    tset = tokenize(enc.tokenizer, _data(), 16, False)
    model = new_model(
        enc, MethodConfig(name=method, bottleneck_size=8), HeadConfig(dropout=0.0), INFO, head_seed=seed
    )
    cfg = TrainConfig(
        learning_rate=3e-2, epochs=20, batch_size=8, seed=seed, progress=False, warmup_ratio=0.0
    )
    result = train(model, tset, tset, INFO, cfg)
    state = {k: v.clone() for k, v in model.trainable_state().items()}
    acc = evaluate(model, tset, INFO)["accuracy"]
    model.detach_body()
    return result, state, acc


def test_training_learns_and_keeps_best_checkpoint():
    result, _state, acc = _train(0)
    assert acc >= 0.9, acc
    assert result.best_metrics["accuracy"] == acc
    assert result.history and result.steps > 0


def test_training_is_deterministic_for_a_seed():
    _, s1, _ = _train(3, "lora")
    _, s2, _ = _train(3, "lora")
    assert all(torch.equal(s1[k], s2[k]) for k in s1)


def test_eval_batches_cover_every_example_once_and_pad_to_batch_max():
    enc = tiny_encoder("bert")
    tset = tokenize(
        enc.tokenizer, _data(20) + [Example("the very good and fun movie with great music", 1)], 16, False
    )
    seen = []
    for idx, batch in eval_batches(tset, 4):
        seen += idx
        assert batch["input_ids"].shape[1] == max(len(tset.input_ids[i]) for i in idx)
    assert sorted(seen) == list(range(len(tset)))
    epoch = [i for idx, _ in train_batches(tset, 4, torch.Generator().manual_seed(0)) for i in idx]
    assert sorted(epoch) == list(range(len(tset)))


def test_train_adapter_stores_the_majority_baseline_beside_each_metric(tmp_path, capsys) -> None:
    import json
    from pathlib import Path

    from adaptermix.training.config import TrainRunConfig
    from adaptermix.training.metrics import describe_against_baseline
    from adaptermix.training.run import train_adapter

    pack = Path(__file__).parent / "data" / "pack" / "toy_sentiment"
    cfg = TrainRunConfig.model_validate(
        {
            "model": {"max_length": 16},
            "data": {"name": "toy_sentiment", "data_dir": str(pack.parent)},
            "method": {"name": "pfeiffer", "bottleneck_size": 8},
            "train": {"epochs": 1, "batch_size": 8, "progress": False, "seed": 0},
            "output_dir": str(tmp_path / "a"),
            "eval_splits": ["validation", "test"],
        }
    )
    out = train_adapter(cfg, encoder=tiny_encoder("bert"))
    labels = {s: [json.loads(line)["label"] for line in (pack / f"{s}.jsonl").open()] for s in ("train", "test")}
    majority = max((0, 1), key=lambda c: (labels["train"].count(c), -c))
    expected = labels["test"].count(majority) / len(labels["test"])
    stored = json.loads((out.path / "adapter.json").read_text())["metrics"]
    assert stored["test"]["baseline_accuracy"] == out.metrics["test"]["baseline_accuracy"] == expected
    assert stored["test"]["baseline_matthews_correlation"] == 0.0 and "baseline_accuracy" in stored["validation"]
    line = describe_against_baseline("test", out.headline, out.metrics["test"])
    assert line.startswith("test accuracy ") and f"majority baseline {expected:.3f}" in line
