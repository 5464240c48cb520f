"""A user's own CSV / TSV / JSONL files, one per split, with a column mapping.

``data.files`` maps split names to paths; ``data.columns`` names the text, optional second text and
label columns. Classification labels may be strings (looked up in ``data.label_names``) or integer
indices; without ``data.label_names`` the names are the distinct labels of the train file, sorted
(numerically when they are all integers). Regression labels are numbers.

A ``dataset.json`` beside the files (in the train file's folder), like a data-pack manifest, supplies
``task``, ``problem``, ``label_names``, ``metric``, ``secondary_metrics`` and ``domain``; a field set in
the config wins over it. See docs/own-data.md.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from adaptermix.core.errors import DataError
from adaptermix.data.config import DataConfig, default_metric
from adaptermix.data.schema import TaskData, TaskInfo
from adaptermix.data.sources import (
    DATA_SOURCES,
    LabelCodec,
    LabelMode,
    infer_label_names,
    iter_jsonl,
    make_example,
    read_text,
    require_rows,
)

Row = tuple[str, Mapping[str, object]]  # ("file:line", row)

_FORMAT_BY_SUFFIX = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def file_format(path: str, configured: str) -> str:
    """``configured`` unless "auto", else the format named by the file's extension."""
    if configured != "auto":
        return configured
    fmt = _FORMAT_BY_SUFFIX.get(Path(path).suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(_FORMAT_BY_SUFFIX))
        raise DataError(f"{path}: cannot tell the format from the extension ({known}); set data.format")
    return fmt


# TSV has no quoting convention (GLUE's .tsv files contain bare quote characters), so quotes are data
# there; CSV follows the usual double-quote rules.
_DIALECTS: dict[str, dict[str, Any]] = {
    "csv": {"delimiter": ",", "quoting": csv.QUOTE_MINIMAL},
    "tsv": {"delimiter": "\t", "quoting": csv.QUOTE_NONE},
}


def _iter_delimited(text: str, where: str, fmt: str, needed: list[str]) -> Iterator[Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""), **_DIALECTS[fmt])
    try:
        header = reader.fieldnames
        if header is None:
            return
        for col in needed:
            if col not in header:
                raise DataError(f"{where}: missing column {col!r} (columns: {', '.join(header)})")
        for row in reader:
            yield f"{where}:{reader.line_num}", row
    except csv.Error as exc:
        raise DataError(f"{where}:{reader.line_num}: malformed {fmt.upper()} ({exc})") from None


def read_rows(path: str, fmt: str, needed: list[str]) -> list[Row]:
    """Every data row of one file (header and blank JSONL lines skipped), with its file:line."""
    text = read_text(Path(path), path)
    if fmt == "jsonl":
        return list(iter_jsonl(text, path))
    return list(_iter_delimited(text, path, fmt, needed))


MANIFEST = "dataset.json"
_MANIFEST_FIELDS = {
    "task": ("single", "pair"),
    "problem": ("classification", "regression"),
    "label_names": list,
    "metric": str,
    "secondary_metrics": list,
    "domain": str,
}


def read_manifest(cfg: DataConfig) -> dict[str, Any]:
    """The fields of the ``dataset.json`` beside the user's files that the loader uses ({} if none).

    It is looked for in the folder of the train file (else of the first file listed). Only the fields
    of :data:`_MANIFEST_FIELDS` are read (a data-pack manifest's other fields are documentation); each is
    checked, so a mistyped one is a one-line DataError naming the file.
    """
    files = cfg.files or {}
    first = files.get("train") or next(iter(files.values()), None)
    if first is None:
        return {}
    path = Path(first).parent / MANIFEST
    if not path.is_file():
        return {}
    try:
        data = json.loads(read_text(path, str(path)))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object")
    out: dict[str, Any] = {}
    for key, allowed in _MANIFEST_FIELDS.items():
        if data.get(key) is None:
            continue
        value = data[key]
        if isinstance(allowed, tuple):
            ok, want = value in allowed, " or ".join(repr(a) for a in allowed)
        elif allowed is list:
            ok, want = isinstance(value, list) and all(isinstance(x, str) for x in value), "a list of strings"
        else:
            ok, want = isinstance(value, str), "a string"
        if not ok:
            raise DataError(f"{path}: field {key!r} must be {want}, got {value!r}")
        out[key] = value
    if out.get("label_names") is not None and len(set(out["label_names"])) != len(out["label_names"]):
        raise DataError(f"{path}: field 'label_names' has duplicates")
    return out


def _label_names(
    cfg: DataConfig, raw: dict[str, list[Row]], given: list[str] | None = None
) -> tuple[tuple[str, ...], bool]:
    """(label names, whether they were inferred from the train file); ``given``: from the config or manifest."""
    if given:
        return tuple(given), False
    if "train" not in raw:
        raise DataError("data.label_names is required when data.files has no 'train' file to infer them from")
    label_key = cfg.columns.keys()[2]
    names = infer_label_names(row.get(label_key) for _, row in raw["train"])
    if not names:
        train = cfg.files["train"] if cfg.files else "train"  # raw has a train file, so files names it
        raise DataError(f"{train}: no labels found to infer label names from")
    return names, True


def load_files(cfg: DataConfig, splits: tuple[str, ...]) -> TaskData:
    """Load ``splits`` from the user's files named in ``cfg.files``, every row checked."""
    files = cfg.files or {}
    for split in splits:
        if split not in files:
            have = ", ".join(sorted(files)) or "none"
            raise DataError(f"dataset {cfg.name!r} has no {split!r} split (data.files has: {have})")
    manifest = read_manifest(cfg)
    # A field set in the config wins over the dataset's own manifest, which wins over the defaults.
    problem = cfg.problem or manifest.get("problem") or cfg.resolved_problem
    text_key, pair_key, label_key = cfg.columns.keys()
    task = cfg.task or ("pair" if pair_key is not None else None) or manifest.get("task") or "single"
    if task == "pair" and pair_key is None:
        pair_key = "text_pair"  # the data-pack layout's second text
    pair = pair_key if task == "pair" else None
    columns = (text_key, pair, label_key)
    needed = [c for c in columns if c is not None]
    given = cfg.label_names if cfg.label_names is not None else manifest.get("label_names")
    if problem == "regression" and cfg.label_names is not None:
        raise DataError("data.label_names does not apply to a regression task")
    to_read = list(splits)
    if (
        problem == "classification"
        and not given
        and "train" not in to_read
        and "train" in files
    ):
        to_read.append("train")  # label names are inferred from the train file
    raw = {split: read_rows(files[split], file_format(files[split], cfg.format), needed) for split in to_read}

    names: tuple[str, ...] = ()
    mode: LabelMode = "name_or_index"
    if problem == "classification":
        names, inferred = _label_names(cfg, raw, given)
        mode = "name" if inferred else "name_or_index"
    info = TaskInfo(
        name=cfg.name,
        task=task,
        problem=problem,
        label_names=names,
        metric=cfg.metric or manifest.get("metric") or default_metric(problem),
        secondary_metrics=tuple(manifest.get("secondary_metrics") or ()),
        domain=manifest.get("domain") or "",
    )
    codec = LabelCodec(problem=problem, names=names, mode=mode)
    data = TaskData(info=info)
    for split in splits:
        rows = [make_example(row, columns, codec, where) for where, row in raw[split]]
        data.splits[split] = require_rows(rows, files[split])
    return data


DATA_SOURCES.register("files", load_files)
