"""AdapterDelta / ParamLayout / StackedDeltas: value semantics, layouts, LoRA dW space."""

from __future__ import annotations

import pytest
import torch

from adaptermix.deltas import (
    AdapterDelta,
    ParamLayout,
    bottleneck_shapes,
    lora_shapes,
    mean_of,
    parse_name,
    random_delta,
    split_head,
    stack,
    to_dw,
)
from adaptermix.errors import ConfigError, IncompatibleAdaptersError

SHAPES = bottleneck_shapes(n_layers=2, hidden=6, bottleneck=3)


def _delta(seed: int) -> AdapterDelta:
    return random_delta(SHAPES, seed)


def test_parse_name_and_layout_groups() -> None:
    assert parse_name("layers.3.attn.down.weight") == (3, "attn", "down.weight")
    assert parse_name("layers.0.query.lora_A") == (0, "query", "lora_A")
    assert parse_name("scale") == (None, None, "scale")
    layout = _delta(0).layout
    assert layout.size == 2 * 2 * (6 * 3 + 3 + 3 * 6 + 6)
    assert layout.offsets[0] == 0 and layout.offsets[-1] == layout.size
    assert layout.groups("layer").keys == ("layers.0", "layers.1")
    assert layout.groups("site").keys == ("attn", "ffn")
    assert layout.groups("module").keys == ("layers.0.attn", "layers.0.ffn", "layers.1.attn", "layers.1.ffn")
    assert sum(layout.groups("layer").sizes) == layout.size
    element_groups = layout.element_groups("layer")
    assert element_groups.shape == (layout.size,)
    assert torch.equal(torch.bincount(element_groups), torch.tensor(layout.groups("layer").sizes))
    with pytest.raises(ConfigError, match="unknown grouping 'row'"):
        layout.groups("row")


def test_canonical_order_is_natural_and_independent_of_input_order() -> None:
    shapes = bottleneck_shapes(n_layers=11, hidden=2, bottleneck=1, sites=("attn",))
    forward = random_delta(shapes, 0)
    backward = AdapterDelta(dict(reversed(list(forward.tensors.items()))))
    assert forward.layout == backward.layout
    layers = [parse_name(n)[0] for n in forward.layout.names]
    assert layers == sorted(layers)  # layers.10 after layers.9
    assert torch.equal(forward.flatten(), backward.flatten())


def test_arithmetic_matches_tensor_arithmetic() -> None:
    a, b, c = _delta(0), _delta(1), _delta(2)
    name = "layers.1.ffn.up.weight"
    assert torch.allclose((a + b).tensors[name], a.tensors[name] + b.tensors[name])
    assert torch.allclose((a - b).tensors[name], a.tensors[name] - b.tensors[name])
    assert torch.allclose((-a).tensors[name], -a.tensors[name])
    assert torch.allclose((2 * a).tensors[name], (a * 2).tensors[name])
    assert (a / 4).allclose(a * 0.25)
    assert (0 + a).allclose(a) and (a + 0).allclose(a)
    assert sum([a, b, c]).allclose(a + b + c)
    assert (sum([a, b, c]) / 3).allclose(mean_of([a, b, c]))
    assert mean_of([a, b], weights=[3, 1]).allclose(a * 0.75 + b * 0.25)
    assert mean_of([a, a], weights=[1, -1]).allclose(a * 0)
    with pytest.raises(TypeError):
        _ = a + 1.5


def test_flatten_unflatten_and_state_dict_round_trip() -> None:
    a = _delta(0)
    vec = a.flatten()
    assert vec.shape == (a.layout.size,) and vec.dtype == torch.float32
    assert AdapterDelta.unflatten(vec, a.layout).allclose(a, atol=0, rtol=0)
    state = {**a.to_state_dict(), "head.weight": torch.ones(2, 6)}
    body, head = split_head(state)
    assert list(head) == ["head.weight"]
    assert AdapterDelta.from_state_dict(state).allclose(a, atol=0, rtol=0)
    with pytest.raises(IncompatibleAdaptersError, match="head tensor 'head.weight'"):
        AdapterDelta(state)


def test_per_layer_and_per_site_views_partition_the_delta() -> None:
    a = _delta(0)
    layers, sites = a.per_layer(), a.per_site()
    assert list(layers) == ["layers.0", "layers.1"] and list(sites) == ["attn", "ffn"]
    for view in (layers, sites):
        assert sum(v.layout.size for v in view.values()) == a.layout.size
        assert {n for v in view.values() for n in v.tensors} == set(a.tensors)
    assert all(parse_name(n)[1] == "ffn" for n in sites["ffn"].tensors)


def test_stacked_deltas_round_trip_and_select() -> None:
    deltas = [_delta(i) for i in range(4)]
    stacked = stack(deltas, ["a", "b", "c", "d"])
    assert stacked.matrix.shape == (4, deltas[0].layout.size) and stacked.matrix.dtype == torch.float32
    for original, back in zip(deltas, stacked.unstack(), strict=True):
        assert back.allclose(original, atol=0, rtol=0)
    sub = stacked.select([3, 1])
    assert sub.names == ("d", "b")
    assert torch.equal(sub.matrix, stacked.matrix[[3, 1]])
    assert sub.delta(0).allclose(deltas[3], atol=0, rtol=0)


def test_layout_mismatch_raises_with_exact_message() -> None:
    a = _delta(0)
    wrong_shape = AdapterDelta({**a.tensors, "layers.0.attn.down.weight": torch.zeros(4, 6)})
    with pytest.raises(IncompatibleAdaptersError) as err:
        stack([a, wrong_shape], ["news", "tweets"])
    assert str(err.value) == (
        "adapters 'news' and 'tweets' are incompatible: tensor 'layers.0.attn.down.weight' "
        "has shape [3, 6] in 'news' but [4, 6] in 'tweets'"
    )
    missing = AdapterDelta({n: t for n, t in a.tensors.items() if n != "layers.1.ffn.up.bias"})
    with pytest.raises(IncompatibleAdaptersError) as err:
        stack([a, missing], ["news", "tweets"])
    assert str(err.value) == (
        "adapters 'news' and 'tweets' are incompatible: tensor 'layers.1.ffn.up.bias' is in 'news' but not in 'tweets'"
    )
    with pytest.raises(IncompatibleAdaptersError, match="incompatible"):
        _ = a + missing


def test_spaces_do_not_mix() -> None:
    a = _delta(0)
    b = AdapterDelta(a.tensors, space="dw")
    with pytest.raises(IncompatibleAdaptersError, match="different spaces"):
        stack([a, b], ["x", "y"])
    with pytest.raises(IncompatibleAdaptersError, match="different spaces"):
        _ = a + b
    with pytest.raises(IncompatibleAdaptersError, match="unique"):
        stack([a, a], ["x", "x"])


def test_to_dw_replaces_lora_pairs_by_scaled_product() -> None:
    lora = random_delta(lora_shapes(n_layers=2, hidden=5, rank=2), 3)
    mixed = AdapterDelta({**lora.tensors, "layers.0.attn.up.bias": torch.ones(5)})
    dw = to_dw(mixed, alpha_over_r=0.5)
    assert dw.space == "dw"
    assert set(dw.tensors) == {
        "layers.0.attn.up.bias",
        "layers.0.query.dW",
        "layers.0.value.dW",
        "layers.1.query.dW",
        "layers.1.value.dW",
    }
    expected = 0.5 * lora.tensors["layers.1.value.lora_B"] @ lora.tensors["layers.1.value.lora_A"]
    assert torch.allclose(dw.tensors["layers.1.value.dW"], expected)
    assert torch.equal(dw.tensors["layers.0.attn.up.bias"], torch.ones(5))
    assert to_dw(_delta(0), 2.0).space == "raw"  # nothing to convert: still raw parameters
    orphan = AdapterDelta({n: t for n, t in lora.tensors.items() if n != "layers.0.query.lora_B"})
    with pytest.raises(IncompatibleAdaptersError, match="no matching 'layers.0.query.lora_B'"):
        to_dw(orphan, 1.0)


def test_layout_equality_ignores_cache() -> None:
    a, b = _delta(0).layout, _delta(1).layout
    a.groups("layer")
    assert a == b and hash(a) == hash(b)
    assert ParamLayout(a.names, a.shapes) == a
