"""peft LoRA interop: an adapter made with peft itself gives the same outputs in adaptermix, and back.

peft wraps a fresh copy of the tiny base (``tiny._build``, the same seeded weights as ``tiny_encoder``;
peft edits the model in place, so the cached encoder is never handed to it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import adaptermix.cli.interop  # noqa: F401  (registers the import/export subcommands)
from adaptermix.artefact import load_adapter, model_from_adapter
from adaptermix.cli.main import main
from adaptermix.errors import ArtefactError
from adaptermix.interop import HeadChoice, export_adapter, import_adapter
from adaptermix.interop.peft import leaf
from helpers import make_adapter
from tiny import ARCHS, _build, tiny_encoder, tiny_tokenizer

peft = pytest.importorskip("peft")
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")
TOL = 1e-5


def _inputs(vocab: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    ids = torch.randint(5, vocab, (3, 9), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    return {"input_ids": ids.masked_fill(mask == 0, 0), "attention_mask": mask}


def _hidden(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).last_hidden_state


def _targets(arch: str) -> list[str]:
    spec = tiny_encoder(arch).spec
    return [leaf(spec.query), leaf(spec.value)]


def _peft_lora(arch: str, path: Path, **lora_kw: object) -> torch.nn.Module:
    """A peft LoRA on a fresh tiny base with random non-zero factors, saved to ``path``."""
    pm = peft.get_peft_model(
        _build(arch), peft.LoraConfig(r=4, lora_alpha=8, target_modules=_targets(arch), **lora_kw)
    )
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    pm.eval()
    pm.save_pretrained(str(path))
    return pm


def _ours_hidden(
    adapter_dir: Path, arch: str, inputs: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Last hidden states and logits of the adaptermix model for an artefact on the cached tiny encoder."""
    enc = tiny_encoder(arch)
    model = model_from_adapter(load_adapter(adapter_dir), enc)
    try:
        with torch.no_grad():
            return _hidden(enc.model, inputs), model(**inputs)
    finally:
        model.detach_body()


@pytest.mark.parametrize("arch", ARCHS)
def test_peft_import_matches_peft_model(tmp_path: Path, arch: str) -> None:
    pm = _peft_lora(arch, tmp_path / "peft")
    enc = tiny_encoder(arch)
    inputs = _inputs(enc.model.config.vocab_size)
    out = import_adapter(
        "peft", tmp_path / "peft", tmp_path / "ours", enc, HeadChoice(labels=("a", "b", "c"))
    )
    hidden, logits = _ours_hidden(out, arch, inputs)
    want = _hidden(pm, inputs)
    assert (want - _hidden(enc.model, inputs)).abs().max() > 1e-2  # the adapter really changes the output
    assert torch.allclose(hidden, want, atol=TOL, rtol=0)
    # Logits through one shared head: the imported model's head applied to peft's hidden states.
    model = model_from_adapter(load_adapter(out), enc)
    model.detach_body()
    with torch.no_grad():
        model.head.out.weight.normal_()
        assert torch.allclose(
            model.head(hidden, inputs["attention_mask"]),
            model.head(want, inputs["attention_mask"]),
            atol=TOL,
            rtol=0,
        )
    assert torch.equal(logits, torch.zeros_like(logits))  # --labels gives a zero head
    meta = load_adapter(out).meta
    assert meta.provenance["kind"] == "imported" and meta.provenance["from"] == "peft"
    assert meta.method["name"] == "lora" and meta.method["rank"] == 4 and meta.method["alpha"] == 8
    assert meta.base_model["fingerprint"] == enc.fingerprint
    assert meta.task["label_names"] == ["a", "b", "c"]


def test_peft_rslora_imported_exactly(tmp_path: Path) -> None:
    pm = _peft_lora("bert", tmp_path / "peft", use_rslora=True)
    enc = tiny_encoder("bert")
    inputs = _inputs(enc.model.config.vocab_size)
    out = import_adapter("peft", tmp_path / "peft", tmp_path / "ours", enc, HeadChoice(labels=("a", "b")))
    assert torch.allclose(_ours_hidden(out, "bert", inputs)[0], _hidden(pm, inputs), atol=TOL, rtol=0)
    assert load_adapter(out).meta.method["alpha"] == pytest.approx(8 * 2.0)  # alpha * sqrt(r)


@pytest.mark.parametrize("arch", ARCHS)
def test_export_loads_in_peft_with_same_outputs(tmp_path: Path, arch: str) -> None:
    enc = tiny_encoder(arch)
    ours = make_adapter(tmp_path / "ours", enc, method="lora", seed=5, scale=0.3)
    exported = export_adapter("peft", ours, tmp_path / "peft")
    pm = peft.PeftModel.from_pretrained(_build(arch), str(exported)).eval()
    inputs = _inputs(enc.model.config.vocab_size)
    hidden, logits = _ours_hidden(ours, arch, inputs)
    assert (hidden - _hidden(enc.model, inputs)).abs().max() > 1e-2
    assert torch.allclose(_hidden(pm, inputs), hidden, atol=TOL, rtol=0)

    # Importing the export back restores body, method and head (from the sidecar files) exactly.
    back = import_adapter("peft", exported, tmp_path / "back", enc, HeadChoice())
    a, b = load_adapter(ours), load_adapter(back)
    assert a.tensors.keys() == b.tensors.keys()
    assert all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors)
    assert (a.meta.method["rank"], a.meta.method["alpha"]) == (b.meta.method["rank"], b.meta.method["alpha"])
    assert a.meta.task == b.meta.task
    assert torch.allclose(_ours_hidden(back, arch, inputs)[1], logits, atol=TOL, rtol=0)


def test_task_from_reuses_a_trained_head(tmp_path: Path) -> None:
    enc = tiny_encoder("bert")
    _peft_lora("bert", tmp_path / "peft")
    donor = make_adapter(tmp_path / "sst2", enc, method="pfeiffer", seed=1)
    out = import_adapter("peft", tmp_path / "peft", tmp_path / "ours", enc, HeadChoice(task_from=donor))
    got, want = load_adapter(out), load_adapter(donor)
    assert got.meta.task == want.meta.task
    assert all(torch.equal(got.head[k], want.head[k]) for k in want.head)


def _edit_config(src: Path, **changes: object) -> None:
    cfg = json.loads((src / "adapter_config.json").read_text())
    cfg.update(changes)
    (src / "adapter_config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"peft_type": "IA3"}, "only LORA"),
        ({"use_dora": True}, "use_dora"),
        ({"bias": "all"}, "bias"),
        ({"target_modules": ["query", "value", "key"]}, "target_modules"),
        ({"r": 8}, "do not match r=8"),
    ],
)
def test_unsupported_peft_configs_are_one_line_errors(tmp_path: Path, changes: dict, message: str) -> None:
    _peft_lora("bert", tmp_path / "peft")
    _edit_config(tmp_path / "peft", **changes)
    with pytest.raises(ArtefactError, match=message) as exc:
        import_adapter(
            "peft", tmp_path / "peft", tmp_path / "o", tiny_encoder("bert"), HeadChoice(labels=("a", "b"))
        )
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "o").exists()


def test_pickled_weights_refused_and_foreign_lora_rejected(tmp_path: Path) -> None:
    src = tmp_path / "peft"
    _peft_lora("bert", src)
    enc, head = tiny_encoder("bert"), HeadChoice(labels=("a", "b"))
    state = load_file(str(src / "adapter_model.safetensors"))
    # A LoRA on the key projection: adaptermix cannot represent it.
    extra = {k.replace(".query.", ".key."): v.clone() for k, v in state.items() if ".query." in k}
    save_file({**state, **extra}, str(src / "adapter_model.safetensors"))
    with pytest.raises(ArtefactError, match="only the attention query"):
        import_adapter("peft", src, tmp_path / "o", enc, head)
    (src / "adapter_model.safetensors").rename(src / "adapter_model.bin")
    with pytest.raises(ArtefactError, match="pickle"):
        import_adapter("peft", src, tmp_path / "o", enc, head)


def test_export_refuses_bottleneck_adapters(tmp_path: Path) -> None:
    ours = make_adapter(tmp_path / "pf", tiny_encoder("bert"), method="pfeiffer")
    with pytest.raises(ArtefactError, match="only LoRA"):
        export_adapter("peft", ours, tmp_path / "peft")


def test_cli_import_and_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "base"
    _build("bert").save_pretrained(str(base))
    tiny_tokenizer().save_pretrained(str(base))
    _peft_lora("bert", tmp_path / "peft")
    assert (
        main(
            [
                "import",
                "peft",
                str(tmp_path / "peft"),
                "-o",
                str(tmp_path / "ours"),
                "--model",
                str(base),
                "--labels",
                "neg,pos",
            ]
        )
        == 0
    )
    assert load_adapter(tmp_path / "ours").meta.task["label_names"] == ["neg", "pos"]
    assert main(["export-adapter", "peft", str(tmp_path / "ours"), "-o", str(tmp_path / "exp")]) == 0
    cfg = json.loads((tmp_path / "exp" / "adapter_config.json").read_text())
    assert (
        cfg["peft_type"] == "LORA" and cfg["r"] == 4 and sorted(cfg["target_modules"]) == ["query", "value"]
    )
    capsys.readouterr()
    assert main(["import", "peft", str(tmp_path / "peft"), "-o", str(tmp_path / "x")]) == 2
    assert "give --model" in capsys.readouterr().err
    assert (
        main(["import", "nope", str(tmp_path / "peft"), "-o", str(tmp_path / "x"), "--model", str(base)]) == 2
    )
    assert "unknown import format 'nope'; valid: adapterhub, peft" in capsys.readouterr().err
