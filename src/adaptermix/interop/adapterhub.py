"""Bottleneck adapters saved by AdapterHub ``adapters`` (``model.save_adapter(dir, name, use_safetensors=True)``).

An AdapterHub bottleneck adapter at one sub-layer (dense output ``d``, sub-layer input / residual ``r``,
the block's LayerNorm ``LN``) computes, for the configurations imported here (no extra adapter LayerNorms,
no gating, sequential, ``original_ln_after=True``)::

    original_ln_before=False (DoubleSeqBnConfig, "houlsby"):  LN(d + s * f(d) + r)
    original_ln_before=True  (SeqBnConfig, "pfeiffer"):       LN(d + s * f(LN(d + r)) + r)

with ``f(x) = up(act(down(x)))`` and ``s`` the ``scaling`` (a float, or a learned scalar / per-channel
vector). The first is adaptermix's Houlsby placement (``d + f(d)`` on the output projection, then the
block's own dropout + residual + LayerNorm) exactly at inference; the second is its
``original_ln_before`` placement. ``s`` is folded into the up-projection (``s * (W z + b)``), which is
exact. ``mh_adapter`` / ``output_adapter`` select the ``attn`` / ``ffn`` sites: both -> method
``houlsby``, the FFN one only -> ``pfeiffer``. Layers in ``leave_out`` get an all-zero adapter, which is the
identity (``f = 0``). Everything else that changes the computation is refused with a one-line error.

Deviation (training only): AdapterHub applies the adapter's ``dropout`` to its output, adaptermix to its
input; both are off at inference, where the outputs match.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from adaptermix.backbone.loading import Encoder
from adaptermix.backbone.specs import EncoderSpec
from adaptermix.core.errors import ArtefactError
from adaptermix.interop.base import IMPORTERS, ImportedBody, Importer, read_json, read_safetensors
from adaptermix.methods import MethodConfig

CONFIG = "adapter_config.json"
WEIGHTS = "adapter.safetensors"
PICKLED = ("pytorch_adapter.bin",)

# AdapterHub non_linearity -> adaptermix activation (AdapterHub resolves names with transformers' ACT2FN:
# "swish"/"silu" are SiLU, "gelu" is the exact erf GELU like torch.nn.GELU).
ACTIVATION_NAMES: dict[str, str] = {
    "relu": "relu",
    "swish": "swish",
    "silu": "swish",
    "gelu": "gelu",
    "tanh": "tanh",
}

# Options that change the computation in ways adaptermix's bottleneck does not: key -> supported values.
_MUST_BE: dict[str, tuple[Any, ...]] = {
    "ln_before": (False,),
    "ln_after": (False,),
    "use_gating": (False,),
    "is_parallel": (False,),
    "phm_layer": (False,),
    "original_ln_after": (True,),
    "inv_adapter": (None,),
}
# AdapterHub param name -> adaptermix param name.
_PARAMS = {
    "adapter_down.0.weight": "down.weight",
    "adapter_down.0.bias": "down.bias",
    "adapter_up.weight": "up.weight",
    "adapter_up.bias": "up.bias",
    "scaling": "scaling",
}


def _check_config(cfg: dict[str, Any], src: Path) -> None:
    if cfg.get("architecture") not in (None, "bottleneck"):
        raise ArtefactError(
            f"{src}: AdapterHub architecture {cfg.get('architecture')!r} is not supported "
            "(only bottleneck adapters: seq_bn / double_seq_bn)"
        )
    for key, allowed in _MUST_BE.items():
        if cfg.get(key, allowed[0]) not in allowed:
            raise ArtefactError(
                f"{src}: AdapterHub option {key}={cfg.get(key)!r} is not supported "
                f"(supported: {allowed[0]!r})"
            )
    if cfg.get("original_ln_before") and cfg.get("residual_before_ln", True) is not True:
        raise ArtefactError(
            f"{src}: original_ln_before with residual_before_ln="
            f"{cfg.get('residual_before_ln')!r} is not supported (supported: True)"
        )
    if str(cfg.get("non_linearity", "")).lower() not in ACTIVATION_NAMES:
        raise ArtefactError(
            f"{src}: non_linearity {cfg.get('non_linearity')!r} is not supported "
            f"(supported: {', '.join(sorted(ACTIVATION_NAMES))})"
        )
    if not cfg.get("output_adapter"):
        raise ArtefactError(
            f"{src}: only adapters with output_adapter=True are supported "
            "(attention-only adapters have no adaptermix method)"
        )


def _sites(cfg: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """The adaptermix method name and its sites for an AdapterHub config."""
    return ("houlsby", ("attn", "ffn")) if cfg.get("mh_adapter") else ("pfeiffer", ("ffn",))


def _key_pattern(spec: EncoderSpec) -> re.Pattern[str]:
    """``<any prefix>.{layers}.{i}.{attn_block|ffn_block}.adapters.{name}.{param}``."""
    blocks = f"(?P<attn>{re.escape(spec.attn_block or '')})|(?P<ffn>{re.escape(spec.ffn_block or '')})"
    params = "|".join(re.escape(p) for p in _PARAMS)
    return re.compile(
        rf"(?:^|\.){re.escape(spec.layers)}\.(?P<layer>\d+)\.(?:{blocks})\.adapters\."
        rf"(?P<name>[^.]+)\.(?P<param>{params})$"
    )


def _rename(
    state: dict[str, torch.Tensor], spec: EncoderSpec, name: str, src: Path
) -> dict[str, torch.Tensor]:
    """AdapterHub tensor names -> ``layers.{i}.{site}.{param}`` (``scaling`` kept for folding)."""
    pattern = _key_pattern(spec)
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        m = pattern.search(key)
        if m is None or m.group("name") != name:
            raise ArtefactError(f"{src}: unexpected tensor {key!r} for AdapterHub adapter {name!r}")
        site = "attn" if m.group("attn") is not None else "ffn"
        out[f"layers.{m.group('layer')}.{site}.{_PARAMS[m.group('param')]}"] = tensor.float()
    return out


def _fold_scaling(body: dict[str, torch.Tensor], prefix: str, scaling: Any, src: Path) -> None:
    """``s * up(z)`` as one linear map: scale the up-projection's rows and bias (a scalar or per channel).

    A float ``scaling`` is a constant; "learned" / "channel" are tensors saved with the adapter.
    """
    if isinstance(scaling, str):
        if f"{prefix}.scaling" not in body:
            raise ArtefactError(f"{src}: scaling={scaling!r} but no scaling tensor for {prefix}")
        s = body.pop(f"{prefix}.scaling").reshape(-1)
    else:
        s = torch.tensor([float(scaling)])
    body[f"{prefix}.up.weight"] = body[f"{prefix}.up.weight"] * s[:, None]
    body[f"{prefix}.up.bias"] = body[f"{prefix}.up.bias"] * s


def _bottleneck_size(cfg: dict[str, Any], hidden: int, src: Path) -> int:
    rf = cfg.get("reduction_factor", 16)
    if isinstance(rf, Mapping):
        values = set(rf.values())
        if len(values) != 1:
            raise ArtefactError(
                f"{src}: per-layer reduction factors {dict(rf)} are not supported (one bottleneck size)"
            )
        rf = values.pop()
    return max(1, int(hidden // float(rf)))


def _check_meta(meta: dict[str, Any], encoder: Encoder, src: Path) -> dict[str, Any]:
    """The adapter config inside AdapterHub's ``adapter_config.json``, checked against ``encoder``."""
    spec = encoder.spec
    if spec.attn_block is None or spec.ffn_block is None:
        raise ArtefactError(
            f"AdapterHub import supports BERT-family encoders; {spec.model_type!r} is not one"
        )
    cfg = meta.get("config")
    if not isinstance(cfg, dict):
        raise ArtefactError(f"{src}/{CONFIG} has no adapter config object under 'config'")
    _check_config(cfg, src)
    made_for = (meta.get("model_type", spec.model_type), meta.get("hidden_size", encoder.hidden_size))
    if made_for != (spec.model_type, encoder.hidden_size):
        raise ArtefactError(
            f"{src}: adapter was made for a {made_for[0]} with hidden size {made_for[1]}, "
            f"not {spec.model_type} with {encoder.hidden_size}"
        )
    return cfg


def _complete_body(
    body: dict[str, torch.Tensor],
    cfg: dict[str, Any],
    sites: tuple[str, ...],
    size: int,
    encoder: Encoder,
    src: Path,
) -> None:
    """Check every layer/site of ``body`` in place, zero-fill ``leave_out`` layers and fold ``scaling``."""
    hidden = encoder.hidden_size
    shapes = {
        "down.weight": (size, hidden),
        "down.bias": (size,),
        "up.weight": (hidden, size),
        "up.bias": (hidden,),
    }
    leave_out = {int(i) for i in cfg.get("leave_out") or []}
    for i in range(encoder.num_layers):
        for site in sites:
            prefix = f"layers.{i}.{site}"
            if i in leave_out:  # no adapter in this layer: an all-zero adapter is the identity
                body.update({f"{prefix}.{p}": torch.zeros(s) for p, s in shapes.items()})
                continue
            for p, s in shapes.items():
                got = body.get(f"{prefix}.{p}")
                if got is None or tuple(got.shape) != s:
                    what = "missing" if got is None else f"shape {tuple(got.shape)}"
                    raise ArtefactError(f"{src}: {prefix}.{p} is {what}, expected shape {s}")
            _fold_scaling(body, prefix, cfg.get("scaling", 1.0), src)
    expected = {f"layers.{i}.{s}.{p}" for i in range(encoder.num_layers) for s in sites for p in shapes}
    extra = sorted(set(body) - expected)
    if extra:
        raise ArtefactError(f"{src}: tensor {extra[0]} does not fit this adapter config on this encoder")


_PROVENANCE_KEYS = (
    "mh_adapter",
    "output_adapter",
    "reduction_factor",
    "non_linearity",
    "original_ln_before",
    "residual_before_ln",
    "scaling",
    "leave_out",
    "init_weights",
)

# AdapterHub's ``init_weights`` (its default is "bert") -> ``method.init``. "mam_adapter" draws the down-projection
# Kaiming-uniform where adaptermix's "mam" draws it normal; both zero the up-projection, which is what the
# sign statistics depend on, so the import records "mam".
_INITS = {"bert": "bert", "mam_adapter": "mam", "houlsby": "houlsby"}


def _init_of(cfg: dict[str, Any], src: Path) -> str:
    """The ``method.init`` that applies to an AdapterHub adapter: how AdapterHub initialised it."""
    value = str(cfg.get("init_weights") or "bert")
    if value not in _INITS:
        raise ArtefactError(f"{src}: unknown AdapterHub init_weights {value!r} (known: {', '.join(_INITS)})")
    return _INITS[value]


def read_adapterhub(src: Path, encoder: Encoder) -> ImportedBody:
    """Read an AdapterHub bottleneck adapter directory into an adaptermix houlsby/pfeiffer body."""
    meta = read_json(src / CONFIG)
    cfg = _check_meta(meta, encoder, src)
    method_name, sites = _sites(cfg)
    size = _bottleneck_size(cfg, encoder.hidden_size, src)
    name = str(meta.get("name") or src.name)
    body = _rename(read_safetensors(src, WEIGHTS, PICKLED), encoder.spec, name, src)
    _complete_body(body, cfg, sites, size, encoder, src)
    method = MethodConfig.model_validate(dict(
        name=method_name,
        bottleneck_size=size,
        activation=ACTIVATION_NAMES[str(cfg["non_linearity"]).lower()],
        dropout=float(cfg.get("dropout") or 0.0),
        original_ln_before=bool(cfg.get("original_ln_before")),
        init=_init_of(cfg, src),
    ))
    provenance = {
        "adapter_name": name,
        "adapters_version": meta.get("version"),
        "model_name": meta.get("model_name"),
        "config": {k: cfg.get(k) for k in _PROVENANCE_KEYS},
    }
    return ImportedBody(method=method, tensors=body, provenance=provenance)


def adapterhub_base_model(src: Path) -> str | None:
    """The base model name AdapterHub recorded (often empty; then ``--model`` must be given)."""
    return read_json(src / CONFIG).get("model_name") or None


IMPORTERS.register(
    "adapterhub",
    Importer(
        "adapterhub",
        "bottleneck adapters saved by AdapterHub adapters (seq_bn, double_seq_bn)",
        read_adapterhub,
        adapterhub_base_model,
    ),
)
