"""Classifier heads of a mixture.

Each domain has its own head and label set; a mixture's body is evaluated with the *target* domain's
own head (docs/architecture.md, "Heads"). Averaging heads is only meaningful when every adapter predicts
the same labels in the same order, so it is refused otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from adaptermix.core.errors import ConfigError, IncompatibleAdaptersError

Head = Mapping[str, Tensor]


def target_head(heads: Sequence[Head], label_sets: Sequence[Sequence[str]], target: int) -> dict[str, Tensor]:
    return dict(heads[target])


def average_heads(
    heads: Sequence[Head], label_sets: Sequence[Sequence[str]], target: int
) -> dict[str, Tensor]:
    for i, labels in enumerate(label_sets):
        if list(labels) != list(label_sets[0]):
            raise IncompatibleAdaptersError(
                f"cannot average heads: label sets differ: {list(label_sets[0])} vs {list(labels)} (adapter {i})"
            )
    names = list(heads[0])
    for i, head in enumerate(heads):
        if list(head) != names or any(head[n].shape != heads[0][n].shape for n in names):
            raise IncompatibleAdaptersError(
                f"cannot average heads: head of adapter {i} has different tensors"
            )
    return {n: torch.stack([h[n].float() for h in heads]).mean(dim=0) for n in names}


HEAD_MODES: dict[str, Callable[[Sequence[Head], Sequence[Sequence[str]], int], dict[str, Tensor]]] = {
    "target": target_head,
    "average": average_heads,
}


def mix_heads(
    heads: Sequence[Head], label_sets: Sequence[Sequence[str]], mode: str = "target", target: int = 0
) -> dict[str, Tensor]:
    """The head of a mixture: ``target`` keeps ``heads[target]``; ``average`` needs identical label sets."""
    if mode not in HEAD_MODES:
        raise ConfigError(f"unknown head mode {mode!r}; valid: {', '.join(HEAD_MODES)}")
    if len(heads) != len(label_sets) or not heads:
        raise ConfigError(f"{len(heads)} heads for {len(label_sets)} label sets")
    if not 0 <= target < len(heads):
        raise ConfigError(f"target index {target} out of range for {len(heads)} heads")
    return HEAD_MODES[mode](heads, label_sets, target)
