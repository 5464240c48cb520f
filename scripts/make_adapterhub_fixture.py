"""Generate the AdapterHub test fixture in ``tests/fixtures/adapterhub/`` (run once; the output is committed).

AdapterHub ``adapters`` 1.3 pins transformers 4.57, so it cannot be installed next to adaptermix (which uses
transformers 5). Run this script in a separate, throw-away environment::

    python3 -m venv /tmp/ahenv
    /tmp/ahenv/bin/pip install torch==2.13.0
    /tmp/ahenv/bin/pip install "adapters==1.3.*"      # pulls transformers 4.57
    /tmp/ahenv/bin/python scripts/make_adapterhub_fixture.py [OUT_DIR]

What it writes (all tensors as safetensors, nothing pickled):

- ``base/config.json`` + ``base/model.safetensors``: a tiny random-init ``BertModel`` (hidden 32, 2 layers),
  built deterministically from the minimal config in :data:`BASE_CONFIG`;
- ``{name}/adapter_config.json`` + ``{name}/adapter.safetensors`` for each adapter in :data:`ADAPTERS`,
  written by AdapterHub's own ``model.save_adapter(dir, name, use_safetensors=True)`` after its weights are
  randomised (non-zero up-projections, so each adapter changes the output);
- ``inputs.safetensors``: fixed ``input_ids`` / ``attention_mask`` (with padding) and a shared linear
  head (``head.weight``, ``head.bias``) applied to mean-pooled hidden states;
- ``outputs.safetensors``: ``{name}.hidden`` (last hidden states with only that adapter active) and
  ``{name}.logits`` (through the shared head) for each adapter, and the same for ``base`` (no adapter).

The test ``tests/test_interop_adapterhub.py`` rebuilds the base in transformers 5, imports each adapter
with adaptermix and compares against these outputs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import adapters
import torch
from adapters import DoubleSeqBnConfig, SeqBnConfig
from safetensors.torch import save_file
from transformers import BertConfig, BertModel

# Minimal config: every field explicit so transformers 4 and 5 build the same network.
BASE_CONFIG = {
    "model_type": "bert",
    "vocab_size": 64,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 37,
    "hidden_act": "gelu",
    "max_position_embeddings": 64,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "pad_token_id": 0,
}

# name -> AdapterHub config. Covers: Pfeiffer placement (original_ln_before), Houlsby (both sites, swish),
# and a Houlsby variant with a learned per-channel scaling, GELU and a layer left out.
ADAPTERS = {
    "seq_bn": SeqBnConfig(reduction_factor=4),
    "double_seq_bn": DoubleSeqBnConfig(reduction_factor=8),
    "double_seq_bn_channel": DoubleSeqBnConfig(
        reduction_factor=8, non_linearity="gelu", scaling="channel", leave_out=[0]
    ),
}
NUM_LABELS = 3


def build_base() -> BertModel:
    torch.manual_seed(1234)
    config = BertConfig(**{k: v for k, v in BASE_CONFIG.items() if k != "model_type"})
    return BertModel(config, add_pooling_layer=False).eval()


def fixed_inputs() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(99)
    ids = torch.randint(5, BASE_CONFIG["vocab_size"], (3, 10), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 4:] = 0
    ids = ids.masked_fill(mask == 0, BASE_CONFIG["pad_token_id"])
    head_w = torch.randn(NUM_LABELS, BASE_CONFIG["hidden_size"], generator=gen) * 0.5
    head_b = torch.randn(NUM_LABELS, generator=gen) * 0.1
    return {"input_ids": ids, "attention_mask": mask, "head.weight": head_w, "head.bias": head_b}


def mean_pool_logits(hidden: torch.Tensor, inp: dict[str, torch.Tensor]) -> torch.Tensor:
    m = inp["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
    return pooled @ inp["head.weight"].T + inp["head.bias"]


def randomise(model: BertModel, name: str, seed: int) -> None:
    """Give every parameter of adapter ``name`` non-zero random values (AdapterHub inits up to ~0)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if f".adapters.{name}." in pname:
                base = 1.0 if pname.endswith("scaling") else 0.0
                p.copy_(base + torch.randn(p.shape, generator=gen) * 0.3)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model = build_base()
    (out / "base").mkdir(exist_ok=True)
    (out / "base" / "config.json").write_text(json.dumps(BASE_CONFIG, indent=2) + "\n")
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "base" / "model.safetensors")
    )

    inp = fixed_inputs()
    save_file(inp, str(out / "inputs.safetensors"))

    adapters.init(model)
    outputs: dict[str, torch.Tensor] = {}

    def record(tag: str) -> None:
        with torch.no_grad():
            hidden = model(input_ids=inp["input_ids"], attention_mask=inp["attention_mask"]).last_hidden_state
        outputs[f"{tag}.hidden"] = hidden.contiguous()
        outputs[f"{tag}.logits"] = mean_pool_logits(hidden, inp).contiguous()

    record("base")
    for seed, (name, cfg) in enumerate(ADAPTERS.items()):
        model.add_adapter(name, config=cfg)
        randomise(model, name, seed)
        model.set_active_adapters(name)
        model.eval()
        record(name)
        model.save_adapter(str(out / name), name, use_safetensors=True)
        model.set_active_adapters(None)
    save_file(outputs, str(out / "outputs.safetensors"))
    print(
        f"wrote {out} (adapters {adapters.__version__}, transformers {__import__('transformers').__version__})"
    )


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "adapterhub"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
