"""Typed per-method configs: one class per method, dispatched on ``name``, dumping in the layout of before.

The pinned hashes below were computed before the split (one ``MethodConfig`` holding every field): config
hashes, training stamps and ``adapter.json`` files written before must stay those of after.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from adaptermix.config import load_config
from adaptermix.errors import IncompatibleAdaptersError
from adaptermix.methods import (
    METHODS,
    AdaMixConfig,
    GenericMethodConfig,
    HoulsbyConfig,
    LoRAConfig,
    MethodConfig,
    PfeifferConfig,
)
from adaptermix.methods.config import LEGACY_LAYOUT
from adaptermix.pipeline.config import StudyConfig, config_hash
from adaptermix.pool import load_pool
from adaptermix.training.config import TrainRunConfig
from helpers import TOY_SENTIMENT, make_adapter, toy_data
from tiny import tiny_encoder

ROOT = Path(__file__).resolve().parents[1]

# (study config, method) -> (config_hash of its first domain's train run, sha256[:16] of the method's full dump),
# computed with the one-config MethodConfig before the split.
PINNED = {
    ("configs/demo.yaml", "pfeiffer"): ("e6b206cc5909f710", "6a3064524c83ea15"),
    ("configs/cpu-study.yaml", "houlsby"): ("32022c62ca1507ec", "8b46c96e7efe239a"),
    ("configs/cpu-study.yaml", "pfeiffer"): ("ce2a429c42081fec", "6a3064524c83ea15"),
    ("configs/cpu-study.yaml", "lora"): ("587f0118d5031255", "3735a67dc89e9895"),
}
STUDY_STAMPS = {"configs/demo.yaml": "776f2c96397a2bb6", "configs/cpu-study.yaml": "bfcb2e69c2e171c1"}

# An adapter.json ``method`` written before the split (runs/cpu-study/adapters/lora/sst2/adapter.json).
OLD_LORA = {
    "activation": "relu",
    "adamix": {"consistency_weight": 1.0, "num_experts": 4, "placement": "houlsby", "sharing": "up"},
    "alpha": 8.0, "bottleneck_size": None, "dropout": 0.0, "init": "peft", "init_seed": 0, "init_std": 0.02,
    "name": "lora", "original_ln_before": False, "preset": None, "rank": 4, "reduction_factor": 16.0,
}


@pytest.mark.parametrize("path", sorted(STUDY_STAMPS))
def test_study_configs_hash_as_before_the_split(path: str) -> None:
    cfg = load_config(StudyConfig, ROOT / path)
    for method in cfg.methods:
        run = cfg.train_run(method, cfg.domains[0], "x")
        dump = hashlib.sha256(json.dumps(method.model_dump(mode="json")).encode()).hexdigest()[:16]
        assert (config_hash(run), dump) == PINNED[(path, method.name)]
    # The selection and rule-comparison sections are newer than the split and left out of a study's stamp
    # (StudyConfig.stamp_inputs); the rest of the dump is pinned.
    stamp = json.dumps(cfg.model_dump(mode="json", exclude={"output_dir", "selection", "rule_comparison"}))
    assert hashlib.sha256(stamp.encode()).hexdigest()[:16] == STUDY_STAMPS[path]


def test_old_adapter_json_loads_and_dumps_identically() -> None:
    cfg = MethodConfig.from_saved(OLD_LORA)
    assert isinstance(cfg, LoRAConfig) and cfg.inert_fields == {}
    assert cfg.model_dump(mode="json") == OLD_LORA
    assert list(cfg.model_dump()) == list(LEGACY_LAYOUT)  # the old field order too
    assert (cfg.scale, cfg.sites) == (2.0, ("query", "value"))


def test_every_registered_method_has_its_config_class() -> None:
    for name in METHODS.names():
        method = METHODS.get(name)
        cfg = MethodConfig.model_validate({"name": name})
        assert type(cfg) is method.config and cfg.name == name
        assert set(cfg.shape_signature()) == {"name", *cfg.SHAPE_FIELDS}
        assert set(cfg.sites) <= {"query", "key", "value", "attn", "ffn_in", "ffn"} and cfg.sites
    assert {n: type(MethodConfig(name=n)) for n in ("houlsby", "pfeiffer", "lora", "adamix")} == {
        "houlsby": HoulsbyConfig, "pfeiffer": PfeifferConfig, "lora": LoRAConfig, "adamix": AdaMixConfig}
    assert type(MethodConfig()) is PfeifferConfig
    assert type(MethodConfig(name="not-registered")) is GenericMethodConfig


def test_configs_hold_only_their_fields_and_declare_scale_and_sites() -> None:
    lora = MethodConfig(name="lora", rank=2, alpha=8)
    assert "bottleneck_size" not in type(lora).model_fields and lora.scale == 4.0
    assert MethodConfig(name="houlsby").scale == 1.0 and "rank" not in HoulsbyConfig.model_fields
    assert MethodConfig(name="houlsby").sites == ("attn", "ffn") and MethodConfig().sites == ("ffn",)
    assert MethodConfig(name="adamix", adamix={"placement": "pfeiffer"}).sites == ("ffn",)
    assert lora.shape_signature() == {"name": "lora", "rank": 2, "alpha": 8.0, "target_modules": ["query", "value"]}
    # A field of another method: at its old default it is dropped; else kept inert, so the dump is as before.
    odd = MethodConfig(name="lora", bottleneck_size=8, rank=2)
    assert odd.inert_fields == {"bottleneck_size": 8} and odd.model_dump()["bottleneck_size"] == 8
    assert odd.shape_signature() == lora.model_copy(update={"alpha": 8.0}).shape_signature()


def test_target_modules_are_canonical_and_dumped_only_when_set() -> None:
    cfg = MethodConfig(name="lora", target_modules=["dense", "value", "query", "key"])
    assert cfg.sites == ("query", "key", "value", "attn", "ffn_in", "ffn")
    dumped = cfg.model_dump(mode="json")
    assert dumped["target_modules"] == list(cfg.sites) and list(dumped).index("target_modules") == 7
    assert MethodConfig.model_validate(dumped) == cfg
    assert "target_modules" not in MethodConfig(name="lora", target_modules=["value", "query"]).model_dump()
    run = {"data": {"name": "sst2"}, "method": {"name": "lora"}}
    assert config_hash(TrainRunConfig.model_validate(run)) == config_hash(TrainRunConfig.model_validate(
        {**run, "method": {"name": "lora", "target_modules": ["query", "value"]}}))


def test_mismatched_target_modules_are_one_line_naming_only_them(tmp_path: Path) -> None:
    enc = tiny_encoder("bert")
    make_adapter(tmp_path / "a", enc, method="lora", seed=0, info=TOY_SENTIMENT, data=toy_data())
    make_adapter(tmp_path / "b", enc, method="lora", seed=1, info=TOY_SENTIMENT, data=toy_data(),
                 target_modules=["query", "value", "ffn"])
    with pytest.raises(IncompatibleAdaptersError) as exc:
        load_pool([tmp_path / "a", tmp_path / "b"])
    msg = str(exc.value)
    assert "\n" not in msg and "target_modules" in msg
    assert "bottleneck_size" not in msg and "rank" not in msg and "alpha" not in msg
