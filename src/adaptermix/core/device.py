"""Where models run: ``auto`` (a GPU when one is visible, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.

The device is chosen when an encoder is loaded (:func:`adaptermix.backbone.loading.load_encoder`); every
module built on that encoder (adapter bodies, heads, a sweep's live buffer) follows it, and inputs are moved
to it in :meth:`adaptermix.model.AdapterModel.forward`, so batching code stays device-agnostic. The
``ADAPTERMIX_DEVICE`` environment variable sets the default, e.g. ``ADAPTERMIX_DEVICE=cpu`` to keep a GPU
free. Inside a Ray actor that reserved a GPU, Ray sets ``CUDA_VISIBLE_DEVICES`` and ``auto`` picks that GPU.

Precision (:func:`resolve_precision`): ``fp32``, ``bf16`` or ``auto`` (the default; ``$ADAPTERMIX_PRECISION``
overrides it), the format the *frozen encoder* is stored and computed in. ``auto`` is bf16 where the device
computes it fast (a CPU with AMX or AVX-512 bf16, a GPU that supports bf16) and fp32 elsewhere. Adapters,
heads, pooling, losses and mixtures stay fp32; see :mod:`adaptermix.model`.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import torch

from adaptermix.core.errors import ConfigError, ResourceError

ENV = "ADAPTERMIX_DEVICE"
PRECISION_ENV = "ADAPTERMIX_PRECISION"
PRECISIONS = ("auto", "fp32", "bf16")
#: Resolved precision name <-> torch dtype of the frozen encoder.
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16}
#: /proc/cpuinfo flags of CPUs with fast bf16 matrix products (Intel AMX, AVX-512 BF16).
FAST_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
_VALID = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def resolve_device(name: str | None = None) -> torch.device:
    """The torch device for ``name`` (default: ``$ADAPTERMIX_DEVICE`` or ``auto``); one-line errors."""
    spec = (name or os.environ.get(ENV) or "auto").strip().lower()
    if not _VALID.match(spec):
        raise ResourceError(f"unknown device {spec!r}; valid: auto, cpu, cuda, cuda:N")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ResourceError(f"device {spec!r} requested but no CUDA GPU is visible (use 'cpu' or 'auto')")
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise ResourceError(f"device {spec!r} requested but only {torch.cuda.device_count()} GPU(s) are visible")
    return torch.device(spec)


def read_cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags listed in ``cpuinfo`` (empty where the file does not exist, e.g. macOS)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return frozenset(flags)


cpu_flags = functools.cache(read_cpu_flags)
""":func:`read_cpu_flags`, read once per process (``precision: auto`` asks on every encoder load)."""


def fast_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 matrix products natively (and so faster than fp32)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return bool(cpu_flags() & set(FAST_BF16_CPU_FLAGS))
    return False


def resolve_precision(name: str | None = None, device: torch.device | None = None) -> torch.dtype:
    """The encoder's dtype for ``name`` (default: ``$ADAPTERMIX_PRECISION`` or ``auto``) on ``device``.

    ``auto`` -> bf16 where :func:`fast_bf16` holds, else fp32. Unknown names are one-line errors.
    """
    spec = (name or os.environ.get(PRECISION_ENV) or "auto").strip().lower()
    if spec not in PRECISIONS:
        raise ConfigError(f"unknown precision {spec!r}; valid: {', '.join(PRECISIONS)}")
    if spec == "auto":
        return torch.bfloat16 if fast_bf16(device or torch.device("cpu")) else torch.float32
    return DTYPES[spec]


def precision_name(dtype: torch.dtype) -> str:
    """``fp32`` / ``bf16`` for a dtype (the name written into trial keys, stores and artefacts)."""
    for name, d in DTYPES.items():
        if d == dtype:
            return name
    raise ValueError(f"unsupported encoder dtype {dtype}")
