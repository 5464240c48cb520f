"""Where models run: ``auto`` (a GPU when one is visible, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.

The device is chosen when an encoder is loaded (:func:`adaptermix.backbone.loading.load_encoder`); every
module built on that encoder (adapter bodies, heads, a sweep's live buffer) follows it, and inputs are moved
to it in :meth:`adaptermix.model.AdapterModel.forward`, so batching code stays device-agnostic. The
``ADAPTERMIX_DEVICE`` environment variable sets the default, e.g. ``ADAPTERMIX_DEVICE=cpu`` to keep a GPU
free. Inside a Ray actor that reserved a GPU, Ray sets ``CUDA_VISIBLE_DEVICES`` and ``auto`` picks that GPU.
"""

from __future__ import annotations

import os
import re

import torch

from adaptermix.errors import ResourceError

ENV = "ADAPTERMIX_DEVICE"
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
