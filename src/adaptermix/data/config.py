"""Where a task's data comes from: the ``data:`` section of every config.

One model covers the three sources (the offline data pack, a user's CSV/TSV/JSONL files, Hugging Face
``datasets``). Fields that only make sense for one source are rejected for the others, so a typo such as
``files:`` on a data-pack config fails loudly instead of being silently ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import PositiveInt, model_validator

from adaptermix.core.config import StrictModel
from adaptermix.core.errors import DataError
from adaptermix.data.schema import SPLITS, Problem, TaskKind

DATA_ENV = "ADAPTERMIX_DATA"
"""Environment variable naming the data-pack root (a folder of ``<name>/dataset.json`` + split files)."""

EMBEDDED_DATA_DIR = Path(__file__).resolve().parents[1] / "resources" / "datapack"
"""The small data pack shipped inside the package (a deterministic subset of the demo's domains plus the
attack's lexical resources, made by ``scripts/make_embedded_data.py``): the root used when neither
``data.data_dir`` nor ``$ADAPTERMIX_DATA`` is set, so the demo runs on a fresh clone."""

DataOrigin = Literal["config", "env", "embedded"]

Source = Literal["datapack", "files", "hf"]

# Fields that belong to one source only; setting one of them for another source is a config error.
_SOURCE_FIELDS: dict[str, frozenset[str]] = {
    "datapack": frozenset({"data_dir"}),
    "files": frozenset({"files", "format", "columns", "label_names", "task", "problem"}),
    "hf": frozenset({"hf_name", "hf_config", "columns", "label_names", "task", "problem"}),
}


class ColumnMap(StrictModel):
    """Which column (CSV/TSV header, JSONL key or Hub column) holds the text, the optional second text
    and the label.

    Unset (None) means "the source's default": ``text`` / no second text / ``label`` for files and other
    Hub datasets, the table's columns for a built-in Hub dataset. Defaults are None rather than the names
    so that a column set explicitly is told apart from the default even after a dump-and-reload.
    """

    text: str | None = None
    text_pair: str | None = None
    label: str | None = None

    def keys(self) -> tuple[str, str | None, str]:
        """(text, text_pair or None, label) column names with the defaults filled in."""
        return self.text or "text", self.text_pair, self.label or "label"


class DataConfig(StrictModel):
    """The dataset of one task: its source, name, location and optional per-split caps."""

    source: Source = "datapack"
    name: str
    # datapack: root folder; default $ADAPTERMIX_DATA, else the pack embedded in the package.
    data_dir: str | None = None
    # files: split name -> path, and how to read them.
    files: dict[str, str] | None = None
    format: Literal["auto", "csv", "tsv", "jsonl"] = "auto"
    # files, and hf datasets outside the built-in table: how to read rows and what the task is.
    columns: ColumnMap = ColumnMap()
    label_names: list[str] | None = None
    task: TaskKind | None = None  # default: "pair" if columns.text_pair is set, else "single"
    problem: Problem | None = None  # default: "classification"
    metric: str | None = None  # default: the dataset's own, else accuracy (pearson for regression)
    # hf: override the Hub id / config of a built-in dataset, or name any Hub dataset.
    hf_name: str | None = None
    hf_config: str | None = None
    # Caps: a seeded, label-stratified sample of at most this many rows per split.
    max_train: PositiveInt | None = None
    max_validation: PositiveInt | None = None
    max_test: PositiveInt | None = None
    sample_seed: int = 13
    # Seed of the train cap's sample only (default: sample_seed). A noise-floor replicate trains on another
    # sample of the same domain while its validation and test rows stay those of the domain adapter.
    train_sample_seed: int | None = None

    @model_validator(mode="after")
    def _check_source_fields(self) -> DataConfig:
        own = _SOURCE_FIELDS[self.source]
        for other, fields in _SOURCE_FIELDS.items():
            for key in sorted((fields - own) & self.non_default_fields()):
                raise ValueError(f"data.{key} applies to source {other!r}, not {self.source!r}")
        if self.source == "files":
            if not self.files:
                raise ValueError("data.files (split -> path) is required for source 'files'")
            unknown = sorted(set(self.files) - set(SPLITS))
            if unknown:
                raise ValueError(f"data.files: unknown split {unknown[0]!r} (valid: {', '.join(SPLITS)})")
        if self.task == "pair" and self.columns.text_pair is None and self.source != "datapack":
            raise ValueError("data.task is 'pair' but data.columns.text_pair is not set")
        if self.label_names is not None and self.problem == "regression":
            raise ValueError("data.label_names does not apply to a regression task")
        if self.label_names is not None and len(set(self.label_names)) != len(self.label_names):
            raise ValueError("data.label_names has duplicates")
        return self

    def non_default_fields(self) -> set[str]:
        """Names of the fields whose value differs from the default.

        Used instead of pydantic's ``model_fields_set`` so that a dumped config (every field written out,
        as saved beside each artefact) validates and behaves exactly like the original.
        """
        fields = type(self).model_fields
        return {k for k, f in fields.items() if getattr(self, k) != f.get_default(call_default_factory=True)}

    @property
    def resolved_task(self) -> TaskKind:
        """``task``, or "pair" when a second text column is named, else "single"."""
        if self.task is not None:
            return self.task
        return "pair" if self.columns.text_pair is not None else "single"

    @property
    def resolved_problem(self) -> Problem:
        return self.problem or "classification"

    def caps(self) -> dict[str, int | None]:
        """Split name -> row cap (None = keep every row)."""
        return {"train": self.max_train, "validation": self.max_validation, "test": self.max_test}


def default_metric(problem: Problem) -> str:
    """Headline metric for a task that does not name one."""
    return "pearson" if problem == "regression" else "accuracy"


def resolve_data_root(data_dir: str | os.PathLike[str] | None = None) -> tuple[Path, DataOrigin]:
    """The data-pack root and where it came from: ``data_dir`` ("config"), else ``$ADAPTERMIX_DATA``
    ("env"), else the pack shipped in the package ("embedded").

    The one place every reader of the data pack (datasets, the attack's ``lexical/``, listings) resolves
    it. A configured root must be a folder: a wrong path is an error, never a silent fall back to the
    embedded data, so results are not computed on other data than the user asked for.
    """
    origin: DataOrigin
    if data_dir is not None and str(data_dir):
        raw, origin = str(data_dir), "config"
    elif os.environ.get(DATA_ENV):
        raw, origin = os.environ[DATA_ENV], "env"
    else:
        if not EMBEDDED_DATA_DIR.is_dir():
            raise DataError(
                f"no data pack location: set {DATA_ENV} or data.data_dir "
                f"(the embedded data is missing from this installation: {EMBEDDED_DATA_DIR})"
            )
        return EMBEDDED_DATA_DIR, "embedded"
    root = Path(raw).expanduser()
    if not root.is_dir():
        raise DataError(f"data pack folder not found: {root} (set {DATA_ENV} or data.data_dir)")
    return root, origin


def resolve_data_dir(data_dir: str | None = None) -> Path:
    """The data-pack root (see :func:`resolve_data_root`); it is a folder."""
    return resolve_data_root(data_dir)[0]
