"""The offline data pack: one folder per dataset with ``dataset.json`` and ``{split}.jsonl`` files.

Layout (see the pack's README.md)::

    <root>/<name>/dataset.json        manifest: task, problem, label_names, metric, domain, ...
    <root>/<name>/train.jsonl         {"text": str, ["text_pair": str,] "label": int | float}
    <root>/<name>/validation.jsonl
    <root>/<name>/test.jsonl

The root comes from ``data.data_dir``, else ``$ADAPTERMIX_DATA``, else the small pack embedded in the
package (:func:`~adaptermix.data.config.resolve_data_root`). Folders whose manifest describes no task
(e.g. ``lexical/``, word lists for the attack) are not datasets. Every row is checked: a bad one is a
:class:`DataError` such as ``sst2/train.jsonl:17: label 5 not in 0..1``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeGuard

from adaptermix.core.errors import DataError
from adaptermix.data.config import DataConfig, default_metric, resolve_data_dir
from adaptermix.data.schema import TaskData, TaskInfo
from adaptermix.data.sources import (
    DATA_SOURCES,
    LabelCodec,
    iter_jsonl,
    make_example,
    read_text,
    require_rows,
)

MANIFEST = "dataset.json"


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    """The parsed manifest of ``folder``, or None when it has none."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    where = f"{folder.name}/{MANIFEST}"
    try:
        data = json.loads(read_text(path, where))
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}:{exc.lineno}: malformed JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise DataError(f"{where}: expected a JSON object")
    return data


def _is_task(manifest: dict[str, Any] | None) -> TypeGuard[dict[str, Any]]:
    return manifest is not None and "task" in manifest


def _field(manifest: dict[str, Any], key: str, kind: type, where: str, default: Any = None) -> Any:
    value = manifest.get(key, default)
    if not isinstance(value, kind):
        raise DataError(f"{where}: field {key!r} must be a {kind.__name__}")
    return value


def manifest_to_info(name: str, manifest: dict[str, Any]) -> TaskInfo:
    """Map a ``dataset.json`` to a :class:`TaskInfo`, checking the fields the loader relies on."""
    where = f"{name}/{MANIFEST}"
    task = manifest.get("task")
    if task not in ("single", "pair"):
        raise DataError(f"{where}: field 'task' must be 'single' or 'pair', got {task!r}")
    problem = manifest.get("problem", "classification")
    if problem not in ("classification", "regression"):
        raise DataError(f"{where}: field 'problem' must be 'classification' or 'regression', got {problem!r}")
    labels: tuple[str, ...] = ()
    if problem == "classification":
        raw = _field(manifest, "label_names", list, where, default=[])
        if not raw or not all(isinstance(x, str) for x in raw):
            raise DataError(f"{where}: field 'label_names' must be a non-empty list of strings")
        labels = tuple(raw)
    secondary = _field(manifest, "secondary_metrics", list, where, default=[])
    return TaskInfo(
        name=name,
        task=task,
        problem=problem,
        label_names=labels,
        metric=_field(manifest, "metric", str, where, default=default_metric(problem)),
        secondary_metrics=tuple(str(m) for m in secondary),
        domain=_field(manifest, "domain", str, where, default=""),
    )


def list_datapack(root: str | Path | None = None) -> list[TaskInfo]:
    """Every dataset in the pack at ``root`` (default: ``$ADAPTERMIX_DATA``, else embedded), sorted by name."""
    base = resolve_data_dir(None if root is None else str(root))
    infos = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        manifest = _read_manifest(folder)
        if _is_task(manifest):
            infos.append(manifest_to_info(folder.name, manifest))
    return infos


def _dataset_folder(base: Path, name: str) -> tuple[Path, dict[str, Any]]:
    folder = base / name
    plain = Path(name).name == name and name not in (".", "..")  # a folder name, not a path
    manifest = _read_manifest(folder) if plain and folder.is_dir() else None
    if not _is_task(manifest):
        available = ", ".join(info.name for info in list_datapack(base)) or "(none)"
        raise DataError(f"unknown dataset {name!r} in data pack {base}; available: {available}")
    return folder, manifest


def load_datapack(cfg: DataConfig, splits: tuple[str, ...]) -> TaskData:
    """Load ``splits`` of data-pack dataset ``cfg.name``, every row checked."""
    base = resolve_data_dir(cfg.data_dir)
    folder, manifest = _dataset_folder(base, cfg.name)
    info = manifest_to_info(cfg.name, manifest)
    if cfg.metric is not None:
        info = dataclasses.replace(info, metric=cfg.metric)
    codec = LabelCodec(problem=info.problem, names=info.label_names, mode="index")
    columns = ("text", "text_pair" if info.is_pair else None, "label")
    data = TaskData(info=info)
    for split in splits:
        path = folder / f"{split}.jsonl"
        where = f"{cfg.name}/{split}.jsonl"
        if not path.is_file():
            raise DataError(f"dataset {cfg.name!r} has no {split!r} split ({path} not found)")
        rows = [
            make_example(row, columns, codec, here) for here, row in iter_jsonl(read_text(path, where), where)
        ]
        data.splits[split] = require_rows(rows, where)
    return data


DATA_SOURCES.register("datapack", load_datapack)
