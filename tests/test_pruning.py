"""Pruning: exact kept counts (global and per group, with ties), FSD-guided layer choice, registry."""

from __future__ import annotations

import pytest
import torch

from adaptermix.deltas import AdapterDelta, bottleneck_shapes, random_delta, stack
from adaptermix.errors import AdapterMixError
from adaptermix.pruning import (
    PRUNERS,
    conflicting_groups,
    fsd_guided_prune,
    keep_counts,
    magnitude_prune,
    prune,
    topk_mask_grouped,
)

SHAPES = bottleneck_shapes(n_layers=3, hidden=6, bottleneck=3)
SPARSITIES = [0.0, 0.1, 0.25, 0.5, 0.9, 0.97, 1.0]


def _tied(seed: int, zeros: bool = True) -> AdapterDelta:
    """Integer-valued tensors in [-3, 3]: many ties in |w| (and exact zeros unless ``zeros`` is False)."""
    g = torch.Generator().manual_seed(seed)
    values = torch.tensor(
        [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0] if zeros else [-3.0, -2.0, -1.0, 1.0, 2.0, 3.0]
    )
    return AdapterDelta({n: values[torch.randint(len(values), s, generator=g)] for n, s in SHAPES.items()})


@pytest.mark.parametrize("s", SPARSITIES)
def test_global_prune_keeps_exactly_the_requested_count_with_ties(s: float) -> None:
    x = _tied(0, zeros=False).flatten()
    pruned = magnitude_prune(x, s)
    assert torch.count_nonzero(pruned) == round((1 - s) * x.numel())
    survivors, dropped = pruned != 0, pruned == 0
    if survivors.any() and dropped.any():
        assert x[survivors].abs().min() >= x[dropped].abs().max()  # the largest magnitudes survive
    # with exact zeros too, the mask itself keeps exactly the requested count
    z = _tied(1).flatten()
    mask = topk_mask_grouped(
        z.abs()[None],
        torch.zeros(z.numel(), dtype=torch.long),
        keep_counts(torch.tensor([z.numel()]), s)[None],
    )
    assert mask.sum() == round((1 - s) * z.numel())


@pytest.mark.parametrize("s", SPARSITIES)
@pytest.mark.parametrize(
    "scope, view", [("per_layer", "layer"), ("per_module", "module"), ("per_tensor", "tensor")]
)
def test_grouped_prune_keeps_exactly_the_requested_count_per_group(s: float, scope: str, view: str) -> None:
    delta = _tied(2, zeros=False)
    pruned = magnitude_prune(delta, s, scope=scope)
    assert isinstance(pruned, AdapterDelta) and pruned.layout == delta.layout
    for key, part in pruned.view(view).items():
        n = delta.view(view)[key].layout.size
        assert torch.count_nonzero(part.flatten()) == round((1 - s) * n)


def test_ties_are_broken_towards_the_lower_index() -> None:
    x = torch.tensor([1.0, -2.0, 2.0, 2.0, -2.0, 0.5])
    assert torch.equal(magnitude_prune(x, 0.5), torch.tensor([0.0, -2.0, 2.0, 2.0, 0.0, 0.0]))
    # Alg. 2 literally (|w| >= s-th percentile) keeps 4 of 6 here instead of the requested 3:
    threshold = torch.quantile(x.abs(), 0.5)
    assert int((x.abs() >= threshold).sum()) == 4


def test_rows_are_pruned_independently_and_extremes() -> None:
    x = torch.randn(3, 50)
    pruned = magnitude_prune(x, 0.8)
    assert torch.equal(torch.count_nonzero(pruned, dim=1), torch.tensor([10, 10, 10]))
    assert torch.equal(magnitude_prune(x, 0.0), x)
    assert torch.count_nonzero(magnitude_prune(x, 1.0)) == 0


@pytest.mark.parametrize("bad", [1.5, -0.1])
def test_sparsity_out_of_range_is_a_user_error(bad: float) -> None:
    with pytest.raises(AdapterMixError) as err:
        magnitude_prune(torch.randn(10), bad)
    assert str(err.value) == f"sparsity must be in [0, 1], got {bad}"


def test_flat_per_layer_needs_layout_and_unknown_scope() -> None:
    with pytest.raises(AdapterMixError, match="needs the adapter layout"):
        magnitude_prune(torch.randn(10), 0.5, scope="per_layer")
    with pytest.raises(AdapterMixError, match="unknown pruning scope 'rows'"):
        magnitude_prune(torch.randn(10), 0.5, scope="rows")


def _conflict_in_layer(layer: int) -> list[AdapterDelta]:
    a = random_delta(SHAPES, 0)
    b = AdapterDelta({n: -t if n.startswith(f"layers.{layer}.") else t * 2 for n, t in a.tensors.items()})
    c = AdapterDelta({n: t * 3 for n, t in a.tensors.items()})
    return [a, b, c]


def test_fsd_guided_prune_chooses_the_conflicting_layer() -> None:
    stacked = stack(_conflict_in_layer(1), ["a", "b", "c"])
    chosen = conflicting_groups(stacked.matrix, stacked.layout, m=1)
    assert chosen.tolist() == [[False, True, False]] * 3
    pruned = fsd_guided_prune(stacked, m=1, s=0.75)
    sizes = stacked.layout.groups("layer").sizes
    for delta in pruned.unstack():
        counts = [torch.count_nonzero(p.flatten()).item() for p in delta.per_layer().values()]
        assert counts == [sizes[0], round(0.25 * sizes[1]), sizes[2]]
    assert torch.equal(fsd_guided_prune(stacked, m=0, s=0.9).matrix, stacked.matrix)
    with pytest.raises(AdapterMixError, match=r"m must be an integer in \[0, 3\]"):
        fsd_guided_prune(stacked, m=4, s=0.5)


@pytest.mark.parametrize("name", PRUNERS.names())
def test_every_pruner_keeps_layout_and_zero_sparsity_is_identity(name: str) -> None:
    stacked = stack([random_delta(SHAPES, i) for i in range(3)], ["a", "b", "c"])
    assert torch.equal(prune(name, stacked, s=0.0).matrix, stacked.matrix)
    pruned = prune(name, stacked, s=0.5)
    assert pruned.layout == stacked.layout and pruned.names == stacked.names
    assert torch.count_nonzero(pruned.matrix) < torch.count_nonzero(stacked.matrix)
    assert PRUNERS.get(name).reference


def test_magnitude_pruner_matches_function() -> None:
    stacked = stack([random_delta(SHAPES, i) for i in range(2)], ["a", "b"])
    pruned = prune("magnitude", stacked, s=0.3, scope="per_layer")
    for row, delta in zip(pruned.unstack(), stacked.unstack(), strict=True):
        assert row.allclose(magnitude_prune(delta, 0.3, scope="per_layer"), atol=0, rtol=0)
