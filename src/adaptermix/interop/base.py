"""What every importer/exporter shares: the registries, the head of an imported adapter, and saving.

An importer turns another library's adapter directory into an adapter *body* in adaptermix's naming
(``layers.{i}.{site}.{param}``) plus the method config that reproduces its computation. Other libraries
do not save a head that fits ours (pooling + linear), so the head comes from elsewhere (:class:`HeadChoice`):
an existing adaptermix adapter's trained head, a fresh zero head for given labels, or the sidecar files an
adaptermix export left in the directory. The result is an ordinary artefact (``artefact.save_adapter``)
with provenance ``{"kind": "imported", "from": FORMAT, ...}``, usable anywhere a trained one is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from adaptermix.artefacts.artefact import (
    Adapter,
    AdapterMeta,
    check_base,
    load_adapter,
    model_from_adapter,
    save_adapter,
    task_to_dict,
)
from adaptermix.backbone.loading import Encoder
from adaptermix.core.errors import ArtefactError, ConfigError
from adaptermix.core.registry import Registry
from adaptermix.data.schema import TaskInfo
from adaptermix.methods import MethodConfig
from adaptermix.model import Head, HeadConfig

# Files an adaptermix export writes next to a foreign adapter so that importing it back restores the head.
SIDECAR_HEAD = "adaptermix_head.safetensors"
SIDECAR_META = "adaptermix_task.json"


@dataclass
class ImportedBody:
    """A foreign adapter converted to adaptermix naming: method config, body tensors, provenance details."""

    method: MethodConfig
    tensors: dict[str, torch.Tensor]
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Importer:
    """A registered import format: reads a directory into an :class:`ImportedBody` for a given encoder."""

    name: str
    description: str
    read: Callable[[Path, Encoder], ImportedBody]
    base_model_hint: Callable[[Path], str | None]


@dataclass(frozen=True)
class Exporter:
    """A registered export format: writes an adaptermix artefact to a directory of that format."""

    name: str
    description: str
    write: Callable[[Adapter, Path], Path]


IMPORTERS: Registry[Importer] = Registry("import format")
EXPORTERS: Registry[Exporter] = Registry("export format")


@dataclass(frozen=True)
class HeadChoice:
    """Where an imported adapter's head comes from (exactly one of the fields, or none for the sidecar).

    ``task_from``: copy the head, head config and task of an existing adaptermix adapter on the same base.
    ``labels``: a fresh head for a classification task with these labels, initialised to ZERO (constant
    logits until trained) so that it never pretends to be a trained head.
    Neither: use the sidecar files (:data:`SIDECAR_HEAD`, :data:`SIDECAR_META`) an adaptermix export wrote.
    """

    task_from: Path | None = None
    labels: tuple[str, ...] = ()
    task_name: str | None = None


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; missing or malformed files are one-line :class:`ArtefactError`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtefactError(f"missing {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtefactError(f"{path} is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ArtefactError(f"{path} must hold a JSON object")
    return data


def read_safetensors(directory: Path, name: str, pickled: Sequence[str]) -> dict[str, torch.Tensor]:
    """Tensors of ``directory/name``. Only safetensors is read: a pickled file (``pickled``) is refused."""
    path = directory / name
    if not path.is_file():
        found = [p for p in pickled if (directory / p).is_file()]
        if found:
            raise ArtefactError(
                f"{directory}: only safetensors weights are read ({found[0]} is a pickle, which can run code "
                f"when loaded); re-save the adapter with safetensors to get {name}"
            )
        raise ArtefactError(f"{directory}: missing {name}")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises several types for corrupt files
        raise ArtefactError(f"{path} is corrupted or truncated ({type(exc).__name__})") from None


def _zero_head(encoder: Encoder, info: TaskInfo, head_cfg: HeadConfig) -> dict[str, torch.Tensor]:
    head = Head(encoder.hidden_size, info.num_labels, head_cfg)
    return {f"head.{k}": torch.zeros_like(v) for k, v in head.state_dict().items()}


def resolve_head(
    choice: HeadChoice, src: Path, encoder: Encoder
) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """The head tensors, head config (dict) and task (dict) for an adapter imported from ``src``."""
    if choice.task_from is not None and choice.labels:
        raise ConfigError("give either --task-from or --labels, not both")
    if choice.task_from is not None:
        donor = load_adapter(choice.task_from)
        check_base(donor, encoder)
        task = dict(donor.meta.task)
        if choice.task_name:
            task["name"] = choice.task_name
        return donor.head, dict(donor.meta.head), task
    if choice.labels:
        info = TaskInfo(choice.task_name or src.name, "single", "classification", tuple(choice.labels))
        head_cfg = HeadConfig()
        return _zero_head(encoder, info, head_cfg), head_cfg.model_dump(mode="json"), task_to_dict(info)
    if (src / SIDECAR_META).is_file():
        side = read_json(src / SIDECAR_META)
        if side.get("base_model", {}).get("fingerprint") != encoder.fingerprint:
            raise ArtefactError(f"{src}: the head in {SIDECAR_HEAD} was trained on another base model")
        if not isinstance(side.get("task"), dict) or not isinstance(side.get("head"), dict):
            raise ArtefactError(f"{src}/{SIDECAR_META} lacks its 'task' or 'head' object")
        task = dict(side["task"])
        if choice.task_name:
            task["name"] = choice.task_name
        return read_safetensors(src, SIDECAR_HEAD, ()), dict(side["head"]), task
    raise ConfigError(
        f"{src} has no adaptermix head: give --task-from ADAPTER (reuse a trained head) "
        "or --labels a,b,... (a fresh zero head)"
    )


def sidecar_files(adapter: Adapter) -> tuple[dict[str, torch.Tensor], str]:
    """The head tensors and the JSON text an exporter writes beside a foreign adapter (see :data:`SIDECAR_META`)."""
    meta = {
        "task": adapter.meta.task,
        "head": adapter.meta.head,
        "base_model": adapter.meta.base_model,
        "method": adapter.meta.method,
        "provenance": adapter.meta.provenance,
    }
    return adapter.head, json.dumps(meta, indent=2, sort_keys=True) + "\n"


def save_imported(
    body: ImportedBody, encoder: Encoder, head: HeadChoice, src: Path, out: Path, fmt: str
) -> Path:
    """Write ``body`` (+ the chosen head) as an adaptermix artefact at ``out``, checked by loading it back."""
    head_tensors, head_cfg, task = resolve_head(head, src, encoder)
    meta = AdapterMeta(
        method=body.method.model_dump(mode="json"),
        head=head_cfg,
        base_model=AdapterMeta.describe_base(encoder),
        task=task,
        provenance={"kind": "imported", "from": fmt, "source": str(src), **body.provenance},
    )
    tensors = {**body.tensors, **head_tensors}
    bad = next((k for k, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()), None)
    if bad is not None:
        raise ArtefactError(f"{src}: tensor {bad!r} contains NaN or Inf")
    # Build the model once before writing: names and shapes are checked against the method config, so a
    # mapping bug or an unexpected head shape is an error here, never a broken artefact on disk.
    model = model_from_adapter(Adapter(meta, tensors, src), encoder)
    model.detach_body()
    return save_adapter(out, tensors, meta)


def import_adapter(fmt: str, src: str | Path, out: str | Path, encoder: Encoder, head: HeadChoice) -> Path:
    """Import the ``fmt`` adapter directory ``src`` for ``encoder`` into an adaptermix artefact at ``out``."""
    importer = IMPORTERS.get(fmt)
    source = Path(src)
    if not source.is_dir():
        raise ArtefactError(f"{fmt} adapter not found: {source} (expected a directory)")
    body = importer.read(source, encoder)
    return save_imported(body, encoder, head, source, Path(out), fmt)


def export_adapter(fmt: str, adapter: str | Path, out: str | Path) -> Path:
    """Export the adaptermix artefact ``adapter`` to the ``fmt`` directory ``out``."""
    return EXPORTERS.get(fmt).write(load_adapter(adapter), Path(out))
