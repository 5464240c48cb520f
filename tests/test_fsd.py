"""FSD (Alg. 3): vectorised matrix vs the literal algorithm, grouped views, sign-change statistics."""

from __future__ import annotations

import itertools

import pytest
import torch

import adaptermix.diagnostics.conflicts as fsd_module
from adaptermix.deltas import AdapterDelta, bottleneck_shapes, lora_shapes, random_delta, stack, to_dw
from adaptermix.diagnostics import (
    fsd,
    fsd_matrix,
    grouped_fsd,
    literal_fsd,
    per_layer_fsd,
    per_site_fsd,
    sign_change_fraction,
    subset_stats,
)

SHAPES = bottleneck_shapes(n_layers=3, hidden=6, bottleneck=3)


def _with_zeros(delta: AdapterDelta, seed: int) -> AdapterDelta:
    """Set about a quarter of the entries to exact zeros (sparse adapters, zero-initialised biases)."""
    g = torch.Generator().manual_seed(seed)
    return AdapterDelta({n: t * (torch.rand(t.shape, generator=g) > 0.25) for n, t in delta.tensors.items()})


def _pool(n: int = 5) -> list[AdapterDelta]:
    return [_with_zeros(random_delta(SHAPES, i), 100 + i) for i in range(n)]


def test_fsd_basic_properties() -> None:
    a, b = random_delta(SHAPES, 0), random_delta(SHAPES, 1)
    assert fsd(a, a) == 0.0
    assert fsd(a, -a) == 1.0  # randn has no exact zeros
    assert fsd(a, b) == fsd(b, a)
    assert 0.0 <= fsd(a, b) <= 1.0
    z = _with_zeros(a, 3)
    assert fsd(z, -z) == torch.count_nonzero(z.flatten()).item() / z.layout.size


def test_vectorised_matrix_equals_literal_alg3_per_pair() -> None:
    pool = _pool()
    result = fsd_matrix(stack(pool, [f"d{i}" for i in range(len(pool))]))
    values = result.values
    assert values.shape == (5, 5) and result.space == "raw" and result.n_params == pool[0].layout.size
    assert torch.equal(values, values.T) and torch.all(values.diagonal() == 0)
    assert torch.all((values >= 0) & (values <= 1))
    for i, j in itertools.combinations(range(len(pool)), 2):
        assert values[i, j].item() == literal_fsd(pool[i], pool[j]) == fsd(pool[i], pool[j])


def test_chunked_counts_equal_unchunked(monkeypatch: pytest.MonkeyPatch) -> None:
    stacked = stack(_pool(), [f"d{i}" for i in range(5)])
    full = fsd_matrix(stacked).values
    monkeypatch.setattr(fsd_module, "CHUNK_COLUMNS", 7)
    assert torch.equal(fsd_matrix(stacked).values, full)


@pytest.mark.parametrize("by", ["layer", "site", "module", "tensor"])
def test_grouped_fsd_is_consistent_with_whole_and_literal(by: str) -> None:
    pool = _pool(4)
    stacked = stack(pool, ["a", "b", "c", "d"])
    grouped = grouped_fsd(stacked, by)
    assert grouped.by == by and grouped.space == "raw" and sum(grouped.sizes) == stacked.layout.size
    assert torch.allclose(grouped.weighted_total(), fsd_matrix(stacked).values, atol=1e-12)
    for g, key in enumerate(grouped.keys):
        part = [d.view(by)[key] for d in pool]
        assert grouped.values[g, 0, 2].item() == pytest.approx(literal_fsd(part[0], part[2]), abs=1e-12)


def test_per_layer_and_per_site_shortcuts() -> None:
    stacked = stack(_pool(3), ["a", "b", "c"])
    assert per_layer_fsd(stacked).keys == ("layers.0", "layers.1", "layers.2")
    assert per_site_fsd(stacked).keys == ("attn", "ffn")
    as_dict = per_layer_fsd(stacked).as_dict()
    assert as_dict["space"] == "raw" and as_dict["by"] == "layer" and "layers.1" in as_dict["groups"]


def test_fsd_on_dw_reports_its_space_and_ignores_lora_gauge() -> None:
    a = random_delta(lora_shapes(2, 5, 2), 0)
    # (-B)(-A) = B A: the same adapter in another gauge; raw FSD sees total conflict, dW sees none.
    gauge = -a
    raw = fsd_matrix(stack([a, gauge], ["a", "a_flipped"]))
    dw = fsd_matrix(stack([to_dw(a, 1.0), to_dw(gauge, 1.0)], ["a", "a_flipped"]))
    assert raw.space == "raw" and raw.values[0, 1] == 1.0
    assert dw.space == "dw" and dw.values[0, 1] == 0.0
    assert dw.as_dict()["space"] == "dw"


def test_sign_change_fraction() -> None:
    a = _with_zeros(random_delta(SHAPES, 0), 5).flatten()
    single = sign_change_fraction(a, a.clone())
    assert single.flipped == 0.0 and single.zeroed == 0.0 and single.space == "raw"
    assert sign_change_fraction(a, -a).flipped == torch.count_nonzero(a).item() / a.numel()
    zeroed = sign_change_fraction(a, torch.zeros_like(a))
    assert zeroed.flipped == 0.0 and zeroed.zeroed == torch.count_nonzero(a).item() / a.numel()


def test_subset_stats() -> None:
    stacked = stack(_pool(), [f"d{i}" for i in range(5)])
    matrix = fsd_matrix(stacked)
    one = subset_stats(stacked.matrix, matrix, [2], target_pos=2)
    assert (one.k, one.mean_pairwise_fsd, one.flipped, one.zeroed) == (1, 0.0, 0.0, 0.0)
    idx = [0, 3, 4]
    stats = subset_stats(stacked.matrix, matrix, idx, target_pos=3)
    pairs = [matrix.values[i, j].item() for i, j in itertools.permutations(idx, 2)]
    assert stats.mean_pairwise_fsd == pytest.approx(sum(pairs) / len(pairs))
    mixture = stacked.matrix[idx].mean(0)
    assert stats.flipped == sign_change_fraction(stacked.matrix[3], mixture).flipped
    assert stats.space == "raw" and stats.as_dict()["k"] == 3
    with pytest.raises(ValueError, match="not in the mixture"):
        subset_stats(stacked.matrix, matrix, idx, target_pos=1)
