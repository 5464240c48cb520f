"""Adapter methods. Importing this package registers every built-in method in :data:`METHODS`."""

from adaptermix.methods import adamix, bottleneck, lora  # noqa: F401  (registration side effect)
from adaptermix.methods.base import METHODS, AdapterBody, Method, SiteModule, register_method
from adaptermix.methods.config import METHOD_PRESETS, AdaMixOptions, MethodConfig

__all__ = [
    "METHODS",
    "METHOD_PRESETS",
    "AdaMixOptions",
    "AdapterBody",
    "Method",
    "MethodConfig",
    "SiteModule",
    "register_method",
]
