"""AdapterHub interop against a committed fixture made by AdapterHub ``adapters`` 1.3 itself.

``tests/fixtures/adapterhub`` was written by ``scripts/make_adapterhub_fixture.py`` in a separate environment
(``adapters`` pins transformers 4.57): a tiny BERT's weights, three saved adapters and the hidden states and
logits AdapterHub's model produced with each adapter active. Here the same BERT is rebuilt in transformers 5,
each adapter is imported into adaptermix and the outputs must agree within 1e-5.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from adaptermix.artefact import load_adapter, model_from_adapter
from adaptermix.backbone.loading import Encoder, wrap_encoder
from adaptermix.errors import ArtefactError
from adaptermix.interop import HeadChoice, import_adapter
from tiny import tiny_encoder

FIXTURE = Path(__file__).parent / "fixtures" / "adapterhub"
TOL = 1e-5
ADAPTERS = {  # fixture adapter -> (adaptermix method, original_ln_before)
    "seq_bn": ("pfeiffer", True),
    "double_seq_bn": ("houlsby", False),
    "double_seq_bn_channel": ("houlsby", False),
}


@functools.cache
def fixture_encoder() -> Encoder:
    """The fixture's tiny BERT rebuilt from its config and safetensors weights (cached; never mutated)."""
    from transformers import BertConfig, BertModel

    cfg = json.loads((FIXTURE / "base" / "config.json").read_text())
    cfg.pop("model_type")
    model = BertModel(BertConfig(**cfg), add_pooling_layer=False)
    model.load_state_dict(load_file(str(FIXTURE / "base" / "model.safetensors")), strict=True)
    return wrap_encoder("adapterhub-fixture-bert", model, None)


def _inputs() -> dict[str, torch.Tensor]:
    t = load_file(str(FIXTURE / "inputs.safetensors"))
    return {"input_ids": t["input_ids"], "attention_mask": t["attention_mask"]}


def _import(tmp_path: Path, name: str, src: Path | None = None) -> Path:
    return import_adapter(
        "adapterhub",
        src or FIXTURE / name,
        tmp_path / name,
        fixture_encoder(),
        HeadChoice(labels=("a", "b", "c")),
    )


def test_fixture_base_matches() -> None:
    """The rebuilt base alone reproduces AdapterHub's no-adapter output (transformers 4.57 vs 5)."""
    with torch.no_grad():
        hidden = fixture_encoder().model(**_inputs()).last_hidden_state
    assert torch.allclose(
        hidden, load_file(str(FIXTURE / "outputs.safetensors"))["base.hidden"], atol=TOL, rtol=0
    )


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_imported_adapter_matches_adapterhub(tmp_path: Path, name: str) -> None:
    enc = fixture_encoder()
    want = load_file(str(FIXTURE / "outputs.safetensors"))
    shared = load_file(str(FIXTURE / "inputs.safetensors"))
    adapter = load_adapter(_import(tmp_path, name))
    method, ln_before = ADAPTERS[name]
    assert adapter.meta.method["name"] == method and adapter.meta.method["original_ln_before"] is ln_before
    assert adapter.meta.provenance["from"] == "adapterhub"
    model = model_from_adapter(adapter, enc)
    try:
        # The fixture's head (mean pooling + linear) loaded into the adaptermix head: logits compare directly.
        with torch.no_grad():
            model.head.out.weight.copy_(shared["head.weight"])
            model.head.out.bias.copy_(shared["head.bias"])
            hidden = enc.model(**_inputs()).last_hidden_state
            logits = model(**_inputs())
    finally:
        model.detach_body()
    assert (want[f"{name}.hidden"] - want["base.hidden"]).abs().max() > 1e-1  # the adapter matters
    assert torch.allclose(hidden, want[f"{name}.hidden"], atol=TOL, rtol=0)
    assert torch.allclose(logits, want[f"{name}.logits"], atol=TOL, rtol=0)


def test_left_out_layer_is_an_all_zero_adapter(tmp_path: Path) -> None:
    body = load_adapter(_import(tmp_path, "double_seq_bn_channel")).body
    layer0 = [t for k, t in body.items() if k.startswith("layers.0.")]
    assert len(layer0) == 8 and all(not t.any() for t in layer0)
    assert all(t.any() for k, t in body.items() if k.startswith("layers.1.") and "weight" in k)


def test_constant_scaling_is_folded_into_the_up_projection(tmp_path: Path) -> None:
    plain = load_adapter(_import(tmp_path, "double_seq_bn")).body
    scaled = load_adapter(_import(tmp_path, "scaled", _variant(tmp_path, scaling=0.5))).body
    for key, tensor in plain.items():
        assert torch.equal(scaled[key], tensor * 0.5 if ".up." in key else tensor)


def test_cli_needs_model_when_adapterhub_records_none(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import adaptermix.cli.interop  # noqa: F401  (registers the import subcommand)
    from adaptermix.cli.main import main

    assert (
        main(["import", "adapterhub", str(FIXTURE / "seq_bn"), "-o", str(tmp_path / "o"), "--labels", "a,b"])
        == 2
    )
    assert "give --model" in capsys.readouterr().err


def _variant(tmp_path: Path, **changes: object) -> Path:
    src = tmp_path / "variant"
    shutil.copytree(FIXTURE / "double_seq_bn", src)
    meta = json.loads((src / "adapter_config.json").read_text())
    meta["config"].update(changes)
    (src / "adapter_config.json").write_text(json.dumps(meta))
    return src


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ln_before": True}, "ln_before"),
        ({"is_parallel": True}, "is_parallel"),
        ({"use_gating": True}, "use_gating"),
        ({"original_ln_after": False}, "original_ln_after"),
        ({"non_linearity": "leakyrelu"}, "non_linearity"),
        ({"architecture": "lora"}, "architecture"),
        ({"scaling": "learned"}, "no scaling tensor"),
        ({"original_ln_before": True, "residual_before_ln": "post_add"}, "residual_before_ln"),
        ({"reduction_factor": 4}, "expected shape"),
        ({"reduction_factor": {"0": 8, "1": 4, "default": 8}}, "per-layer"),
        ({"mh_adapter": False}, "does not fit this adapter config"),
    ],
)
def test_unsupported_configs_are_one_line_errors(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(ArtefactError, match=message) as exc:
        _import(tmp_path, "out", _variant(tmp_path, **changes))
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "out").exists()


def test_pickle_refused_and_non_bert_refused(tmp_path: Path) -> None:
    src = _variant(tmp_path)
    (src / "adapter.safetensors").rename(src / "pytorch_adapter.bin")
    with pytest.raises(ArtefactError, match="pickle"):
        _import(tmp_path, "out", src)
    with pytest.raises(ArtefactError, match="BERT-family"):
        import_adapter(
            "adapterhub",
            FIXTURE / "seq_bn",
            tmp_path / "o",
            tiny_encoder("distilbert"),
            HeadChoice(labels=("a", "b")),
        )


@pytest.mark.parametrize(("init_weights", "init"), [("bert", "bert"), ("mam_adapter", "mam"), ("houlsby", "houlsby")])
def test_imported_adapter_records_adapterhubs_init(tmp_path: Path, init_weights: str, init: str) -> None:
    adapter = load_adapter(_import(tmp_path, "out", _variant(tmp_path, init_weights=init_weights)))
    assert adapter.meta.method_config.init == init
    with pytest.raises(ArtefactError, match="init_weights"):
        _import(tmp_path, "bad", _variant(tmp_path / "v2", init_weights="xavier"))
