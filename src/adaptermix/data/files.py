"""A user's own CSV / TSV / JSONL files, one per split, with a column mapping.

``data.files`` maps split names to paths; ``data.columns`` names the text, optional second text and
label columns. Classification labels may be strings (looked up in ``data.label_names``) or integer
indices; without ``data.label_names`` the names are the distinct labels of the train file, sorted
(numerically when they are all integers). Regression labels are numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from pathlib import Path

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
from adaptermix.errors import DataError

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
_DIALECTS = {
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


def _label_names(cfg: DataConfig, raw: dict[str, list[Row]]) -> tuple[tuple[str, ...], bool]:
    """(label names, whether they were inferred from the train file)."""
    if cfg.label_names is not None:
        return tuple(cfg.label_names), False
    if "train" not in raw:
        raise DataError("data.label_names is required when data.files has no 'train' file to infer them from")
    label_key = cfg.columns.keys()[2]
    names = infer_label_names(row.get(label_key) for _, row in raw["train"])
    if not names:
        raise DataError(f"{cfg.files['train']}: no labels found to infer label names from")  # type: ignore[index]
    return names, True


def load_files(cfg: DataConfig, splits: tuple[str, ...]) -> TaskData:
    """Load ``splits`` from the user's files named in ``cfg.files``, every row checked."""
    files = cfg.files or {}
    for split in splits:
        if split not in files:
            have = ", ".join(sorted(files)) or "none"
            raise DataError(f"dataset {cfg.name!r} has no {split!r} split (data.files has: {have})")
    problem = cfg.resolved_problem
    text_key, pair_key, label_key = cfg.columns.keys()
    pair = pair_key if cfg.resolved_task == "pair" else None
    columns = (text_key, pair, label_key)
    needed = [c for c in columns if c is not None]
    to_read = list(splits)
    if (
        problem == "classification"
        and cfg.label_names is None
        and "train" not in to_read
        and "train" in files
    ):
        to_read.append("train")  # label names are inferred from the train file
    raw = {split: read_rows(files[split], file_format(files[split], cfg.format), needed) for split in to_read}

    names: tuple[str, ...] = ()
    mode: LabelMode = "name_or_index"
    if problem == "classification":
        names, inferred = _label_names(cfg, raw)
        mode = "name" if inferred else "name_or_index"
    info = TaskInfo(
        name=cfg.name,
        task=cfg.resolved_task,
        problem=problem,
        label_names=names,
        metric=cfg.metric or default_metric(problem),
    )
    codec = LabelCodec(problem=problem, names=names, mode=mode)
    data = TaskData(info=info)
    for split in splits:
        rows = [make_example(row, columns, codec, where) for where, row in raw[split]]
        data.splits[split] = require_rows(rows, files[split])
    return data


DATA_SOURCES.register("files", load_files)
