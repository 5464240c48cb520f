"""Artefacts across versions: newer formats named in one line, older ones load, damaged ones are corrupted;
method mismatches name only the differing fields that apply; an imported peft adapter records a model id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adaptermix import __version__
from adaptermix.artefact import FORMAT_VERSION, META, load_adapter
from adaptermix.backbone import loading
from adaptermix.cli.main import main
from adaptermix.errors import ArtefactError, IncompatibleAdaptersError
from adaptermix.pool import load_pool
from helpers import TOY_SENTIMENT, make_adapter, toy_data
from tiny import _build, tiny_encoder, tiny_tokenizer

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")


def _edit(path: Path, change) -> None:
    meta = json.loads((path / META).read_text())
    change(meta)
    (path / META).write_text(json.dumps(meta))


@pytest.fixture
def adapter(tmp_path: Path) -> Path:
    return make_adapter(tmp_path / "a", tiny_encoder("bert"), seed=1)


def _error(path: Path) -> str:
    with pytest.raises(ArtefactError) as info:
        load_adapter(path)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_unknown_top_level_field_names_the_writer(adapter):
    def newer(meta):
        meta["foo"] = 1
        meta["versions"]["adaptermix"] = "0.3.0"
        meta["format_version"] = 3

    _edit(adapter, newer)
    assert _error(adapter) == (
        f"adapter {adapter} was written by adaptermix 0.3.0 (format 3), which added field 'foo'; "
        f"upgrade adaptermix (this is {__version__}, format {FORMAT_VERSION}) to read it"
    )


def test_unknown_nested_field_and_higher_format_alone(adapter, tmp_path):
    _edit(adapter, lambda m: m["method"].update(init="sign", warm=1))
    assert "which added fields 'method.init', 'method.warm'; upgrade adaptermix" in _error(adapter)
    other = make_adapter(tmp_path / "b", tiny_encoder("bert"), seed=2)
    _edit(other, lambda m: m.update(format_version=FORMAT_VERSION + 1))
    assert f"(format {FORMAT_VERSION + 1}), newer than format {FORMAT_VERSION}; upgrade" in _error(other)


def test_older_format_without_optional_fields_still_loads(adapter):
    def v1(meta):  # a format-1 file as the first release wrote it: no version fields, no provenance
        for key in ("format_version", "versions", "created_at", "provenance", "metrics", "training"):
            meta.pop(key, None)
        meta["method"].pop("original_ln_before", None)

    _edit(adapter, v1)
    loaded = load_adapter(adapter)
    assert loaded.meta.format_version == FORMAT_VERSION == 1
    assert loaded.meta.provenance == {"kind": "trained"} and loaded.meta.method_config.original_ln_before is False


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{not json", "JSONDecodeError"),
        ("[1, 2]", "not a JSON object"),
        ('{"format_version": "x"}', "format_version 'x'"),
    ],
)
def test_truly_corrupted_json_is_still_corrupted(adapter, text, why):
    (adapter / META).write_text(text)
    assert _error(adapter) == f"adapter {adapter}: {META} is corrupted ({why})"


def test_missing_or_mistyped_fields_are_corrupted(adapter, tmp_path):
    _edit(adapter, lambda m: m.pop("method"))
    assert _error(adapter).startswith(f"adapter {adapter}: {META} is corrupted (TypeError")
    other = make_adapter(tmp_path / "b", tiny_encoder("bert"), seed=2)
    _edit(other, lambda m: m["method"].update(rank="many"))
    assert _error(other).startswith(f"adapter {other}: {META} is corrupted (ValidationError")


def test_method_mismatch_names_only_fields_that_differ_and_apply(tmp_path):
    enc = tiny_encoder("bert")
    kw = {"info": TOY_SENTIMENT, "data": toy_data()}
    a = make_adapter(tmp_path / "a", enc, method="lora", seed=0, **kw)
    b = make_adapter(tmp_path / "b", enc, method="lora", seed=1, **kw)
    _edit(b, lambda m: m["method"].update(bottleneck_size=99, activation="gelu"))  # unused by LoRA
    assert load_pool([a, b]).names == ["a", "b"]
    _edit(b, lambda m: m["method"].update(alpha=16.0))
    with pytest.raises(IncompatibleAdaptersError) as info:
        load_pool([a, b])
    assert str(info.value) == "adapters 'a' and 'b' have different lora settings: alpha 8.0 vs 16.0"
    c = make_adapter(tmp_path / "c", enc, method="houlsby", seed=2, **kw)
    with pytest.raises(IncompatibleAdaptersError) as info:
        load_pool([a, c])
    assert str(info.value) == "adapters 'a' and 'c' have different methods: 'lora' vs 'houlsby'"


def test_imported_peft_records_the_model_id_not_a_packaged_path(tmp_path, monkeypatch):
    peft = pytest.importorskip("peft")
    base = tmp_path / "venv" / "site-packages" / "tiny_pkg" / "model"  # a packaged offline copy
    _build("bert").save_pretrained(str(base))
    tiny_tokenizer().save_pretrained(str(base))
    monkeypatch.setitem(loading.PACKAGED_MODELS, "org/tiny-bert", lambda: base)
    pm = peft.get_peft_model(_build("bert"), peft.LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"]))
    pm.save_pretrained(str(tmp_path / "peft"))
    cfg_path = tmp_path / "peft" / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = str(base)  # what peft writes when given the local folder
    cfg_path.write_text(json.dumps(cfg))
    for i, extra in enumerate(([], ["--model", str(base)])):
        out = tmp_path / f"ours{i}"
        assert main(["import", "peft", str(tmp_path / "peft"), "-o", str(out), "--labels", "a,b", *extra]) == 0
        meta = load_adapter(out).meta
        assert meta.base_model["name"] == "org/tiny-bert"
        assert meta.base_model["fingerprint"] == tiny_encoder("bert").fingerprint
        assert meta.provenance["base_model_name_or_path"] == "org/tiny-bert"
        assert str(tmp_path / "venv") not in (out / META).read_text()
