"""Seeded stratified sampling (the ``max_*`` caps) and stratified splitting (carved Hub splits)."""

from __future__ import annotations

from collections import Counter

import pytest

from adaptermix.data.sampling import allocate, stratified_sample, stratified_split
from adaptermix.data.schema import Example


def _examples(counts: dict[int, int]) -> list[Example]:
    """Interleaved rows with the given per-class counts; texts are unique so rows can be told apart."""
    out: list[Example] = []
    remaining = dict(counts)
    i = 0
    while any(remaining.values()):
        for label in sorted(remaining):
            if remaining[label]:
                out.append(Example(text=f"row {i}", label=label))
                remaining[label] -= 1
                i += 1
    return out


@pytest.mark.parametrize(
    ("counts", "n", "expected"),
    [
        ([50, 50], 10, [5, 5]),
        ([70, 30], 10, [7, 3]),
        ([1, 1, 1], 2, [1, 1, 0]),  # ties broken by class position
        ([97, 2, 1], 10, [8, 1, 1]),  # every class kept: the rare class borrows from the largest
        ([5, 3], 100, [5, 3]),  # n >= total: everything
        ([33, 33, 34], 10, [3, 3, 4]),  # largest remainder
    ],
)
def test_allocate(counts: list[int], n: int, expected: list[int]) -> None:
    alloc = allocate(counts, n)
    assert alloc == expected
    assert sum(alloc) == min(n, sum(counts))
    assert all(0 <= a <= c for a, c in zip(alloc, counts, strict=True))


def test_allocate_fewer_draws_than_classes_keeps_proportions() -> None:
    # n < number of classes: not every class can be kept; the largest classes win.
    assert allocate([10, 80, 10], 2) == [0, 2, 0]


def test_stratified_sample_keeps_class_shares_and_minority() -> None:
    rows = _examples({0: 900, 1: 95, 2: 5})
    sample = stratified_sample(rows, 100, seed=3)
    assert len(sample) == 100
    # quotas 90 / 9.5 / 0.5 -> largest remainder 90 / 10 / 0 -> the rare class borrows one: 89 / 10 / 1
    assert Counter(e.label for e in sample) == {0: 89, 1: 10, 2: 1}
    assert len(set(sample)) == 100


def test_stratified_sample_is_deterministic_ordered_and_seed_dependent() -> None:
    rows = _examples({0: 300, 1: 200})
    a = stratified_sample(rows, 50, seed=13)
    assert a == stratified_sample(rows, 50, seed=13)
    assert a != stratified_sample(rows, 50, seed=14)
    positions = [rows.index(e) for e in a]
    assert positions == sorted(positions)  # original order kept


def test_stratified_sample_returns_everything_when_n_is_large() -> None:
    rows = _examples({0: 3, 1: 2})
    assert stratified_sample(rows, 5, seed=0) == rows
    assert stratified_sample(rows, 50, seed=0) == rows


def test_regression_is_a_plain_seeded_sample() -> None:
    rows = [Example(text=f"r{i}", label=float(i % 7) / 2, text_pair="p") for i in range(200)]
    a = stratified_sample(rows, 20, seed=1)
    assert len(a) == 20 and a == stratified_sample(rows, 20, seed=1)
    assert all(isinstance(e.label, float) for e in a)
    # forcing stratification off on integer labels gives a plain sample too (not per-class quotas)
    ints = _examples({0: 100, 1: 100})
    plain = stratified_sample(ints, 10, seed=1, stratify=False)
    assert len(plain) == 10 and plain == stratified_sample(ints, 10, seed=1, stratify=False)


def test_stratified_split_is_8_1_1_per_class_disjoint_and_reproducible() -> None:
    rows = _examples({0: 100, 1: 45})
    parts = stratified_split(rows, {"test": 0.1, "validation": 0.1}, seed=13)
    assert list(parts) == ["train", "validation", "test"]
    counts = {name: Counter(e.label for e in split) for name, split in parts.items()}
    # per class: round half up of n * 0.1 to test, same to validation, rest to train
    assert counts["test"] == {0: 10, 1: 5} and counts["validation"] == {0: 10, 1: 5}
    assert counts["train"] == {0: 80, 1: 35}
    all_rows = [e for split in parts.values() for e in split]
    assert sorted(all_rows, key=lambda e: e.text) == sorted(rows, key=lambda e: e.text)
    assert parts == stratified_split(rows, {"test": 0.1, "validation": 0.1}, seed=13)
    assert parts != stratified_split(rows, {"test": 0.1, "validation": 0.1}, seed=14)


def test_stratified_split_regression_uses_one_group() -> None:
    rows = [Example(text=f"r{i}", label=i / 10, text_pair="p") for i in range(50)]
    parts = stratified_split(rows, {"validation": 0.1}, seed=0)
    assert {k: len(v) for k, v in parts.items()} == {"train": 45, "validation": 5}
