"""LoRA ``target_modules`` (as peft): sites from the config, peft adapters on any encoder linear import exactly,
training, mixing and FSD over such adapters."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from adaptermix.artefact import load_adapter, model_from_adapter
from adaptermix.errors import ArtefactError
from adaptermix.interop import HeadChoice, export_adapter, import_adapter
from adaptermix.mixture import mix_pool
from adaptermix.pool import load_pool
from helpers import TOY_SENTIMENT, make_adapter, toy_data
from tiny import _build, tiny_encoder

ALL = ["query", "key", "value", "dense"]
TOL = 1e-5


def _inputs(vocab: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    ids = torch.randint(5, vocab, (3, 9), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    return {"input_ids": ids.masked_fill(mask == 0, 0), "attention_mask": mask}


def _hidden(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).last_hidden_state


def _peft_lora(arch: str, path: Path, targets: list[str] | str) -> torch.nn.Module:
    peft = pytest.importorskip("peft")
    pm = peft.get_peft_model(_build(arch), peft.LoraConfig(r=4, lora_alpha=8, target_modules=targets))
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    pm.eval()
    pm.save_pretrained(str(path))
    return pm


@pytest.mark.parametrize(("arch", "targets"), [
    ("bert", ALL),
    ("bert", ["attention.output.dense", "intermediate.dense"]),
    ("roberta", ["key", "dense"]),
    ("distilbert", ["q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"]),
])
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")
def test_peft_lora_on_any_linear_imports_exactly(tmp_path: Path, arch: str, targets: list[str]) -> None:
    pm = _peft_lora(arch, tmp_path / "peft", targets)
    enc = tiny_encoder(arch)
    inputs = _inputs(enc.model.config.vocab_size)
    out = import_adapter("peft", tmp_path / "peft", tmp_path / "ours", enc, HeadChoice(labels=("a", "b")))
    adapter = load_adapter(out)
    cfg = adapter.meta.method_config
    want = _hidden(pm, inputs)
    assert (want - _hidden(enc.model, inputs)).abs().max() > 1e-2
    model = model_from_adapter(adapter, enc)
    try:
        got = _hidden(enc.model, inputs)
    finally:
        model.detach_body()
    assert torch.allclose(got, want, atol=TOL, rtol=0)
    if targets == ALL:
        assert cfg.sites == ("query", "key", "value", "attn", "ffn_in", "ffn")
        assert adapter.meta.method["target_modules"] == list(cfg.sites)

    # Exported back, peft rebuilds the same modules (a regex where BERT's "dense" names are ambiguous).
    exported = export_adapter("peft", out, tmp_path / "back")
    peft = pytest.importorskip("peft")
    again = peft.PeftModel.from_pretrained(_build(arch), str(exported)).eval()
    assert torch.allclose(_hidden(again, inputs), want, atol=TOL, rtol=0)


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")
def test_peft_tensors_outside_target_modules_are_refused(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    src = tmp_path / "peft"
    _peft_lora("bert", src, ["query", "value"])
    state = load_file(str(src / "adapter_model.safetensors"))
    extra = {k.replace(".attention.self.query.", ".intermediate.dense."): v.clone() for k, v in state.items()
             if ".query." in k}
    save_file({**state, **extra}, str(src / "adapter_model.safetensors"))
    with pytest.raises(ArtefactError, match="target_modules does not name") as exc:
        import_adapter("peft", src, tmp_path / "o", tiny_encoder("bert"), HeadChoice(labels=("a", "b")))
    assert "\n" not in str(exc.value)


def test_training_a_lora_on_target_modules(tmp_path: Path) -> None:
    from adaptermix.training.config import TrainRunConfig
    from adaptermix.training.run import train_adapter

    cfg = TrainRunConfig.model_validate({
        "model": {"max_length": 16},
        "data": toy_data(),
        "method": {"name": "lora", "rank": 2, "target_modules": ["key", "dense"]},
        "train": {"epochs": 1, "batch_size": 8, "progress": False, "seed": 0, "learning_rate": 1e-2},
        "output_dir": str(tmp_path / "a"),
        "eval_splits": ["validation"],
    })
    out = train_adapter(cfg, encoder=tiny_encoder("bert"))
    adapter = load_adapter(out.path)
    sites = {k.split(".")[2] for k in adapter.body}
    assert sites == {"key", "attn", "ffn_in", "ffn"}
    assert adapter.body["layers.0.ffn_in.lora_B"].shape == (37, 2)  # intermediate_size x r
    assert adapter.body["layers.0.ffn.lora_A"].shape == (2, 37)
    assert adapter.body["layers.1.key.lora_B"].abs().sum() > 0  # trained (B starts at zero)
    assert adapter.meta.method["target_modules"] == ["key", "attn", "ffn_in", "ffn"]
    assert adapter.meta.base_model["intermediate_size"] == 37


def test_mixing_and_fsd_over_target_module_adapters(tmp_path: Path) -> None:
    enc = tiny_encoder("bert")
    for i, name in enumerate(("a", "b", "c")):
        make_adapter(tmp_path / name, enc, method="lora", seed=i, info=TOY_SENTIMENT, data=toy_data(),
                     target_modules=ALL)
    pool = load_pool([tmp_path / n for n in ("a", "b", "c")])
    fsd = pool.fsd()
    assert fsd.values.shape == (3, 3) and float(fsd.values[0, 1]) > 0
    assert pool.fsd("dw").values.shape == (3, 3)
    updates = pool.updates()  # rebuilt inits: the intermediate width comes from adapter.json
    assert updates.matrix.shape == pool.flat.shape
    mixed = mix_pool(pool, "average", target="a")
    assert mixed.meta.method["target_modules"] == ["query", "key", "value", "attn", "ffn_in", "ffn"]
    assert torch.allclose(mixed.body["layers.1.ffn_in.lora_A"],
                          torch.stack([load_adapter(tmp_path / n).body["layers.1.ffn_in.lora_A"]
                                       for n in ("a", "b", "c")]).mean(0), atol=1e-6)
    cat = mix_pool(pool, "cat", target="a")
    assert cat.meta.method["rank"] == 6 and cat.body["layers.0.ffn.lora_A"].shape == (6, 37)
    model = model_from_adapter(cat, enc)  # the rank-sum LoRA builds and runs on every target module
    try:
        with torch.no_grad():
            model(**_inputs(enc.model.config.vocab_size))
    finally:
        model.detach_body()
