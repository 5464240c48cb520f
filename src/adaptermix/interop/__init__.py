"""Interop with the ecosystem: import peft LoRA and AdapterHub bottleneck adapters, export LoRA to peft.

Importing this package registers every built-in format in :data:`IMPORTERS` / :data:`EXPORTERS`.
"""

from adaptermix.interop import adapterhub, peft  # noqa: F401  (registration side effect)
from adaptermix.interop.base import (
    EXPORTERS,
    IMPORTERS,
    Exporter,
    HeadChoice,
    ImportedBody,
    Importer,
    export_adapter,
    import_adapter,
)

__all__ = [
    "EXPORTERS",
    "IMPORTERS",
    "Exporter",
    "HeadChoice",
    "ImportedBody",
    "Importer",
    "export_adapter",
    "import_adapter",
]
