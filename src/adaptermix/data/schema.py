"""In-memory form of a text-classification / regression task, shared by every loader.

Every loader (the offline data pack, a user's CSV/TSV/JSONL files, Hugging Face ``datasets``) returns a
:class:`TaskData`; the rest of the tool never knows where the data came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from adaptermix.core.errors import DataError

TaskKind = Literal["single", "pair"]
Problem = Literal["classification", "regression"]
SPLITS: tuple[str, ...] = ("train", "validation", "test")


@dataclass(frozen=True)
class Example:
    """One labelled input. ``label`` is a class index (classification) or a float (regression)."""

    text: str
    label: int | float
    text_pair: str | None = None


@dataclass(frozen=True)
class TaskInfo:
    """What a task is: its input kind, problem type, label names and headline metric."""

    name: str
    task: TaskKind
    problem: Problem
    label_names: tuple[str, ...] = ()
    metric: str = "accuracy"
    secondary_metrics: tuple[str, ...] = ()
    domain: str = ""

    @property
    def num_labels(self) -> int:
        """Output size of the head: number of classes, or 1 for regression."""
        return 1 if self.problem == "regression" else len(self.label_names)

    @property
    def is_pair(self) -> bool:
        return self.task == "pair"


@dataclass
class TaskData:
    """A task and its splits."""

    info: TaskInfo
    splits: dict[str, list[Example]] = field(default_factory=dict)

    def split(self, name: str) -> list[Example]:
        """Return split ``name``; a missing or empty split is a one-line :class:`DataError`."""
        if name not in self.splits:
            have = ", ".join(sorted(self.splits)) or "none"
            raise DataError(f"dataset {self.info.name!r} has no {name!r} split (has: {have})")
        rows = self.splits[name]
        if not rows:
            raise DataError(f"dataset {self.info.name!r}: split {name!r} is empty")
        return rows
