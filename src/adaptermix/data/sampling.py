"""Seeded, label-stratified sampling and splitting of examples.

:func:`stratified_sample` implements the ``max_*`` caps: it keeps each class's share of the split
(proportional allocation, largest-remainder rounding) so a capped imbalanced split such as tweets_hate
still has its minority class, and it is deterministic for a seed. :func:`stratified_split` carves
validation/test splits out of a train split for Hub datasets that lack them, with the same procedure the
offline data pack was built with (``/work/shared/data/README.md``, "Split policy").
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

from adaptermix.data.schema import SPLITS, Example


def _is_classification(examples: Sequence[Example]) -> bool:
    """Integer labels mean classes; float labels mean regression."""
    return all(type(e.label) is int for e in examples)


def _groups(examples: Sequence[Example], stratify: bool) -> dict[object, list[int]]:
    """Row indices per label (ascending label order), or one group of all rows when not stratifying."""
    if not stratify:
        return {None: list(range(len(examples)))}
    groups: dict[object, list[int]] = {}
    for i, ex in enumerate(examples):
        groups.setdefault(ex.label, []).append(i)
    return dict(sorted(groups.items()))


def allocate(counts: Sequence[int], n: int) -> list[int]:
    """Split ``n`` draws over classes of sizes ``counts`` proportionally (largest-remainder rounding).

    When ``n`` is at least the number of non-empty classes, every non-empty class gets at least one draw
    (taken from the class with the largest allocation), so a rare class never vanishes from a capped
    split. Ties are broken by class position, so the result is deterministic.
    """
    total = sum(counts)
    if n >= total:
        return list(counts)
    quotas = [n * c / total for c in counts]
    alloc = [math.floor(q) for q in quotas]
    by_remainder = sorted(range(len(counts)), key=lambda i: (-(quotas[i] - alloc[i]), i))
    for i in by_remainder[: n - sum(alloc)]:
        alloc[i] += 1
    present = [i for i, c in enumerate(counts) if c > 0]
    if n >= len(present):
        for i in present:
            if alloc[i] == 0:
                donor = max(range(len(alloc)), key=lambda j: (alloc[j], -j))
                alloc[donor] -= 1
                alloc[i] = 1
    return alloc


def stratified_sample(
    examples: Sequence[Example], n: int, seed: int, *, stratify: bool | None = None
) -> list[Example]:
    """A seeded sample of ``n`` examples, stratified by label for classification, in original order.

    ``stratify=None`` stratifies when every label is an int (classification) and draws a plain seeded
    sample otherwise (regression). Returns every row when ``n >= len(examples)``.
    """
    if n >= len(examples):
        return list(examples)
    if stratify is None:
        stratify = _is_classification(examples)
    groups = _groups(examples, stratify)
    alloc = allocate([len(rows) for rows in groups.values()], n)
    rng = random.Random(seed)
    chosen: list[int] = []
    for rows, k in zip(groups.values(), alloc, strict=True):
        chosen.extend(rng.sample(rows, k))
    return [examples[i] for i in sorted(chosen)]


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def stratified_split(
    examples: Sequence[Example],
    holdout: Mapping[str, float],
    seed: int,
    *,
    stratify: bool | None = None,
) -> dict[str, list[Example]]:
    """Split ``examples`` into ``"train"`` plus the ``holdout`` splits (name -> fraction of the rows).

    Same procedure as the offline data pack: one ``random.Random(seed)``; per label value in ascending
    order (one group for regression) the row indices are shuffled, the first round(n * fraction) go to
    the first holdout split, the next to the second, and so on (round half up), the rest to train; then
    every split is shuffled with the same generator in the order train, validation, test (other names
    after, as given). For the paper's 8:1:1 split pass ``{"test": 0.1, "validation": 0.1}``.
    """
    if stratify is None:
        stratify = _is_classification(examples)
    rng = random.Random(seed)
    parts: dict[str, list[int]] = {"train": [], **{name: [] for name in holdout}}
    for rows in _groups(examples, stratify).values():
        rows = list(rows)
        rng.shuffle(rows)
        start = 0
        for name, fraction in holdout.items():
            take = _round_half_up(len(rows) * fraction)
            parts[name].extend(rows[start : start + take])
            start += take
        parts["train"].extend(rows[start:])
    order = sorted(parts, key=lambda name: SPLITS.index(name) if name in SPLITS else len(SPLITS))
    out: dict[str, list[Example]] = {}
    for name in order:
        rng.shuffle(parts[name])
        out[name] = [examples[i] for i in parts[name]]
    return out
