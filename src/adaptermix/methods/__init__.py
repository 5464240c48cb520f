"""Adapter methods. Importing this package registers every built-in method in :data:`METHODS`."""

from adaptermix.methods import adamix, bottleneck, lora  # noqa: F401  (registration side effect)
from adaptermix.methods.base import METHODS, AdapterBody, Method, SiteModule, register_method
from adaptermix.methods.config import (
    METHOD_PRESETS,
    AdaMixConfig,
    AdaMixOptions,
    BottleneckConfig,
    GenericMethodConfig,
    HoulsbyConfig,
    LoRAConfig,
    MethodConfig,
    PfeifferConfig,
)

__all__ = [
    "METHODS",
    "METHOD_PRESETS",
    "AdaMixConfig",
    "AdaMixOptions",
    "AdapterBody",
    "BottleneckConfig",
    "GenericMethodConfig",
    "HoulsbyConfig",
    "LoRAConfig",
    "Method",
    "MethodConfig",
    "PfeifferConfig",
    "SiteModule",
    "register_method",
]
