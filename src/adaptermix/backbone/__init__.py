"""Frozen Hugging Face encoders and the per-architecture specs adapters attach to."""

from adaptermix.backbone.loading import (
    DEFAULT_MODEL,
    Encoder,
    fingerprint_model,
    load_encoder,
    resolve_model_path,
    wrap_encoder,
)
from adaptermix.backbone.specs import ENCODER_SPECS, EncoderSpec

__all__ = [
    "DEFAULT_MODEL",
    "ENCODER_SPECS",
    "Encoder",
    "EncoderSpec",
    "fingerprint_model",
    "load_encoder",
    "resolve_model_path",
    "wrap_encoder",
]
