"""The data-source registry, :func:`load_task`, and the row checks every source shares.

A data source is a function ``(cfg, splits) -> TaskData`` registered in :data:`DATA_SOURCES` in one line
where it is defined (``datapack.py``, ``files.py``, ``hub.py``). :func:`load_task` picks the source named
in the config, loads only the requested splits and then applies the per-split caps, so caps behave the
same whatever the data came from.

Every source turns raw rows into :class:`Example` through the same checks (:func:`check_text`,
:class:`LabelCodec`), so a bad row is reported the same way everywhere: one line ``where: problem``,
where ``where`` is ``file:line`` (or a Hub split and row number).
"""

from __future__ import annotations

import codecs
import functools
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from adaptermix.core.errors import DataError
from adaptermix.core.registry import Registry
from adaptermix.data.config import DataConfig
from adaptermix.data.sampling import stratified_sample
from adaptermix.data.schema import SPLITS, Example, Problem, TaskData

DataSource = Callable[[DataConfig, tuple[str, ...]], TaskData]
"""Load the named splits of ``cfg``'s dataset (and nothing else)."""

DATA_SOURCES: Registry[DataSource] = Registry("data source")


def load_task(cfg: DataConfig, splits: Sequence[str] = SPLITS) -> TaskData:
    """Load ``splits`` of the dataset ``cfg`` names, then cap each split to its ``max_*`` rows.

    Capping is a seeded, label-stratified sample drawn from the whole split (see
    :func:`~adaptermix.data.sampling.stratified_sample`), so the same config always yields the same rows.
    """
    wanted = tuple(dict.fromkeys(splits))
    for split in wanted:
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r} (valid: {', '.join(SPLITS)})")
    data = DATA_SOURCES.get(cfg.source)(cfg, wanted)
    caps = cfg.caps()
    stratify = data.info.problem == "classification"
    for split, rows in data.splits.items():
        cap = caps.get(split)
        if cap is not None and cap < len(rows):
            seed = cfg.sample_seed
            if split == "train" and cfg.train_sample_seed is not None:
                seed = cfg.train_sample_seed
            data.splits[split] = stratified_sample(rows, cap, seed, stratify=stratify)
    return data


# ---------------------------------------------------------------------------------------------------
# Shared row checks


def decode_utf8(raw: bytes, where: str) -> str:
    """Decode a whole file as UTF-8 (a leading BOM is dropped); bad bytes -> DataError naming file:line."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{where}:{line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x})") from None


def check_text(row: Mapping[str, object], key: str, where: str) -> str:
    """``row[key]`` as a non-empty string, else a one-line DataError."""
    if key not in row or row[key] is None:
        raise DataError(f"{where}: missing field {key!r}")
    value = row[key]
    if not isinstance(value, str):
        raise DataError(f"{where}: field {key!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise DataError(f"{where}: field {key!r} is empty")
    return value


def read_text(path: Path, where: str) -> str:
    """A whole text file, UTF-8 checked; a missing file is a DataError naming it."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{where}: file not found ({path})") from None
    except IsADirectoryError:
        raise DataError(f"{where}: is a folder, not a file ({path})") from None
    return decode_utf8(raw, where)


def iter_jsonl(text: str, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``("where:line", object)`` for each non-blank line of a JSONL text.

    Lines are split on "\n" only (not ``str.splitlines``), so a U+2028 inside a JSON string does not
    break a row in two; a malformed line or a non-object is a DataError naming file:line.
    """
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        here = f"{where}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{here}: malformed JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{here}: expected a JSON object, got {type(obj).__name__}")
        yield here, obj


def make_example(
    row: Mapping[str, object],
    columns: tuple[str, str | None, str],
    codec: LabelCodec,
    where: str,
) -> Example:
    """One checked :class:`Example` from a row; ``columns`` = (text, text_pair or None, label) keys."""
    text_key, pair_key, label_key = columns
    text = check_text(row, text_key, where)
    pair = check_text(row, pair_key, where) if pair_key is not None else None
    if label_key not in row:
        raise DataError(f"{where}: missing field {label_key!r}")
    return Example(text=text, label=codec.encode(row[label_key], where), text_pair=pair)


def require_rows(rows: list[Example], where: str) -> list[Example]:
    """An empty split is a DataError at load time (not later, deep inside training)."""
    if not rows:
        raise DataError(f"{where}: no rows (empty split)")
    return rows


def _is_int_literal(value: str) -> bool:
    text = value.strip()
    return text.lstrip("+-").isdigit()


LabelMode = Literal["index", "name_or_index", "name"]


@dataclass(frozen=True)
class LabelCodec:
    """Turns a raw label into an :class:`Example` label, or a one-line DataError.

    Classification, by ``mode``:

    - ``"index"`` (the data pack): the label must be a JSON integer in ``range(len(names))``;
    - ``"name_or_index"`` (user files or the Hub with known label names): a string is looked up in
      ``names`` (``fold_case`` ignores case); an integer, or an integer literal that is not a name, is
      an index;
    - ``"name"`` (label names inferred from the data): every label, numbers included, is a name.

    Regression: a finite number; outside ``"index"`` mode a numeric string is accepted too.
    """

    problem: Problem
    names: tuple[str, ...] = ()
    mode: LabelMode = "index"
    fold_case: bool = False

    def encode(self, raw: object, where: str) -> int | float:
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            raise DataError(f"{where}: missing label")
        if self.problem == "regression":
            return self._number(raw, where)
        if self.mode == "index":
            return self._index(raw, where)
        if isinstance(raw, int | float | str) and not isinstance(raw, bool):
            text = str(raw).strip() if self.mode == "name" or isinstance(raw, str) else None
            if text is not None:
                found = _name_table(self.names, self.fold_case).get(
                    text.casefold() if self.fold_case else text
                )
                if found is not None:
                    return found
                if self.mode == "name" or not _is_int_literal(text):
                    raise DataError(f"{where}: unknown label {text!r} (known: {', '.join(self.names)})")
                raw = int(text)
        return self._index(raw, where)

    def _number(self, raw: object, where: str) -> float:
        ok_types = (int, float, str) if self.mode != "index" else (int, float)
        if isinstance(raw, bool) or not isinstance(raw, ok_types):
            raise DataError(f"{where}: label {raw!r} is not a number")
        try:
            value = float(raw)
        except ValueError:
            raise DataError(f"{where}: label {raw!r} is not a number") from None
        if not math.isfinite(value):
            raise DataError(f"{where}: label {raw!r} is not finite")
        return value

    def _index(self, raw: object, where: str) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise DataError(f"{where}: label {raw!r} is not an integer class index")
        if not 0 <= raw < len(self.names):
            raise DataError(f"{where}: label {raw} not in 0..{len(self.names) - 1}")
        return raw


@functools.lru_cache(maxsize=64)
def _name_table(names: tuple[str, ...], fold_case: bool) -> dict[str, int]:
    """name -> index for one label set (cached: the codec is frozen and called once per row)."""
    return {(n.casefold() if fold_case else n): i for i, n in enumerate(names)}


def infer_label_names(raw_labels: Iterable[object]) -> tuple[str, ...]:
    """Label names for a task that does not list them: the distinct labels seen, as strings.

    Sorted numerically when every label is an integer (so "2" < "10"), else as strings. With integer
    labels 0..k-1 each label's index is the label itself.
    """
    distinct = {str(x).strip() for x in raw_labels if x is not None and not isinstance(x, bool)}
    distinct.discard("")
    if distinct and all(_is_int_literal(x) for x in distinct):
        return tuple(sorted(distinct, key=int))
    return tuple(sorted(distinct))
