"""An adapter's body tensors as a value type, and N adapters stacked as one [N, P] matrix.

Pattern from mlfoundations/task_vectors (``TaskVector.__add__``/``__neg__``): ``sum(deltas) / k`` just
works. Every tensor is named ``layers.{i}.{site}.{param}`` (project-wide convention); tensors are kept in
a canonical (natural-sort) order so that two adapters with the same tensors always share one
:class:`ParamLayout`, whatever order their state dicts listed them in. Head tensors (``head.*``) are
per-domain and never part of a delta.

Every delta and stack carries its *space*: ``"raw"`` (the adapter's own parameters, what the paper's Eq. 1
and Alg. 3 use) or ``"dw"`` (LoRA factor pairs replaced by their effective update, see :func:`to_dw`).
Mixing deltas of different spaces is an error, and every diagnostic reports the space it was computed in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from adaptermix.core.errors import ConfigError, IncompatibleAdaptersError

SPACES = ("raw", "dw")
HEAD_PREFIX = "head."
_NAME_RE = re.compile(r"^layers\.(\d+)\.([A-Za-z_]\w*)\.(.+)$")


def _natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders ``layers.10`` after ``layers.9``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def parse_name(name: str) -> tuple[int | None, str | None, str]:
    """Split ``layers.{i}.{site}.{param}`` into (i, site, param); other names give (None, None, name)."""
    match = _NAME_RE.match(name)
    if match is None:
        return None, None, name
    return int(match.group(1)), match.group(2), match.group(3)


def _module_key(name: str) -> str:
    layer, site, _ = parse_name(name)
    return "other" if layer is None else f"layers.{layer}.{site}"


def _layer_key(name: str) -> str:
    layer = parse_name(name)[0]
    return "other" if layer is None else f"layers.{layer}"


# How each view groups tensors: group key of a tensor name. Names outside the convention fall in "other".
_GROUP_KEYS: dict[str, Callable[[str], str]] = {
    "all": lambda n: "all",
    "tensor": lambda n: n,
    "layer": _layer_key,
    "site": lambda n: parse_name(n)[1] or "other",
    "module": _module_key,
    "kind": lambda n: parse_name(n)[2],  # tensor kind: up.weight, down.bias, lora_A, dW ...
}
GROUPINGS = tuple(_GROUP_KEYS)


@dataclass(frozen=True)
class Grouping:
    """A partition of a layout's tensors: ``keys[g]`` names group g, ``tensor_group[t]`` is tensor t's group."""

    by: str
    keys: tuple[str, ...]
    tensor_group: tuple[int, ...]
    sizes: tuple[int, ...]  # parameters per group


@dataclass(frozen=True)
class ParamLayout:
    """Ordered tensor names and shapes of one adapter body, with flat offsets into its 1-D vector."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    _groups: dict[str, Grouping] = field(default_factory=dict, compare=False, repr=False, hash=False)
    _elements: dict[str, Tensor] = field(default_factory=dict, compare=False, repr=False, hash=False)

    @staticmethod
    def of(tensors: Mapping[str, Tensor]) -> ParamLayout:
        names = tuple(sorted(tensors, key=_natural_key))
        return ParamLayout(names, tuple(tuple(tensors[n].shape) for n in names))

    @property
    def numels(self) -> tuple[int, ...]:
        return tuple(int(torch.Size(s).numel()) for s in self.shapes)

    @property
    def offsets(self) -> tuple[int, ...]:
        """Start of each tensor in the flat vector (length T + 1; the last entry is the total)."""
        out = [0]
        for n in self.numels:
            out.append(out[-1] + n)
        return tuple(out)

    @property
    def size(self) -> int:
        return self.offsets[-1]

    def layer_of(self, name: str) -> int | None:
        return parse_name(name)[0]

    def site_of(self, name: str) -> str | None:
        return parse_name(name)[1]

    def groups(self, by: str) -> Grouping:
        """Partition tensors by ``by`` in ``GROUPINGS`` ("all", "tensor", "layer", "site", "module", "kind")."""
        if by not in self._groups:
            if by not in _GROUP_KEYS:
                raise ConfigError(f"unknown grouping {by!r}; valid: {', '.join(GROUPINGS)}")
            tensor_keys = [_GROUP_KEYS[by](n) for n in self.names]
            keys = tuple(dict.fromkeys(tensor_keys))
            index = {k: g for g, k in enumerate(keys)}
            tensor_group = tuple(index[k] for k in tensor_keys)
            sizes = [0] * len(keys)
            for g, n in zip(tensor_group, self.numels, strict=True):
                sizes[g] += n
            self._groups[by] = Grouping(by, keys, tensor_group, tuple(sizes))
        return self._groups[by]

    def element_groups(self, by: str) -> Tensor:
        """Group id of every flat parameter (int64 [P]); cached because sweeps ask for it per trial."""
        if by not in self._elements:
            grouping = self.groups(by)
            self._elements[by] = torch.repeat_interleave(
                torch.tensor(grouping.tensor_group, dtype=torch.long), torch.tensor(self.numels)
            )
        return self._elements[by]

    def first_difference(self, other: ParamLayout, a: str = "first", b: str = "second") -> str | None:
        """One-line description of the first differing tensor (canonical order), or None if equal."""
        shapes_a, shapes_b = (
            dict(zip(self.names, self.shapes, strict=True)),
            dict(zip(other.names, other.shapes, strict=True)),
        )
        for name in sorted(set(shapes_a) | set(shapes_b), key=_natural_key):
            if name not in shapes_b:
                return f"tensor {name!r} is in {a!r} but not in {b!r}"
            if name not in shapes_a:
                return f"tensor {name!r} is in {b!r} but not in {a!r}"
            if shapes_a[name] != shapes_b[name]:
                return (
                    f"tensor {name!r} has shape {list(shapes_a[name])} in {a!r} "
                    f"but {list(shapes_b[name])} in {b!r}"
                )
        return None


def require_same_layout(layouts: Sequence[ParamLayout], names: Sequence[str]) -> ParamLayout:
    """Return the common layout or raise IncompatibleAdaptersError naming the first differing tensor."""
    for layout, name in zip(layouts[1:], names[1:], strict=True):
        if layout == layouts[0]:
            continue
        diff = layouts[0].first_difference(layout, names[0], name)
        if diff is not None:
            raise IncompatibleAdaptersError(f"adapters {names[0]!r} and {name!r} are incompatible: {diff}")
    return layouts[0]


def _require_same_space(spaces: Sequence[str], names: Sequence[str]) -> str:
    for space, name in zip(spaces[1:], names[1:], strict=True):
        if space != spaces[0]:
            raise IncompatibleAdaptersError(
                f"adapters {names[0]!r} and {name!r} are in different spaces: {spaces[0]!r} vs {space!r}"
            )
    return spaces[0]


class AdapterDelta:
    """An adapter body (ordered name -> tensor) supporting +, -, scalar * and /, ``sum`` and flattening."""

    __slots__ = ("tensors", "layout", "space")

    def __init__(self, tensors: Mapping[str, Tensor], space: str = "raw") -> None:
        if space not in SPACES:
            raise ValueError(f"space must be one of {SPACES}, got {space!r}")
        heads = [n for n in tensors if n.startswith(HEAD_PREFIX)]
        if heads:
            raise IncompatibleAdaptersError(f"head tensor {heads[0]!r} cannot be part of an adapter delta")
        self.layout = ParamLayout.of(tensors)
        self.tensors: dict[str, Tensor] = {n: tensors[n] for n in self.layout.names}
        self.space = space

    # -- construction / conversion -------------------------------------------------------------
    @classmethod
    def from_state_dict(cls, state_dict: Mapping[str, Tensor], space: str = "raw") -> AdapterDelta:
        """Body of an adapter state dict; ``head.*`` tensors are left out (see :func:`split_head`)."""
        return cls(split_head(state_dict)[0], space)

    def to_state_dict(self) -> dict[str, Tensor]:
        return dict(self.tensors)

    def flatten(self) -> Tensor:
        """All tensors concatenated in layout order as one float32 vector of length ``layout.size``."""
        return torch.cat([t.detach().reshape(-1).float() for t in self.tensors.values()])

    @classmethod
    def unflatten(cls, vec: Tensor, layout: ParamLayout, space: str = "raw") -> AdapterDelta:
        if vec.shape != (layout.size,):
            raise ValueError(f"vector of shape {tuple(vec.shape)} does not match layout size {layout.size}")
        parts = torch.split(vec, list(layout.numels))
        return cls(
            {n: p.reshape(s) for n, p, s in zip(layout.names, parts, layout.shapes, strict=True)}, space
        )

    def subset(self, names: Iterable[str]) -> AdapterDelta:
        return AdapterDelta({n: self.tensors[n] for n in names}, self.space)

    def view(self, by: str) -> dict[str, AdapterDelta]:
        """Sub-deltas per group of ``layout.groups(by)`` (e.g. per layer or per site)."""
        grouping = self.layout.groups(by)
        members: dict[str, list[str]] = {k: [] for k in grouping.keys}
        for name, g in zip(self.layout.names, grouping.tensor_group, strict=True):
            members[grouping.keys[g]].append(name)
        return {k: self.subset(ns) for k, ns in members.items()}

    def per_layer(self) -> dict[str, AdapterDelta]:
        return self.view("layer")

    def per_site(self) -> dict[str, AdapterDelta]:
        return self.view("site")

    # -- arithmetic ----------------------------------------------------------------------------
    def _combine(self, other: AdapterDelta, op: Any) -> AdapterDelta:
        require_same_layout([self.layout, other.layout], ["left operand", "right operand"])
        space = _require_same_space([self.space, other.space], ["left operand", "right operand"])
        return AdapterDelta({n: op(t, other.tensors[n]) for n, t in self.tensors.items()}, space)

    def _map(self, fn: Any) -> AdapterDelta:
        return AdapterDelta({n: fn(t) for n, t in self.tensors.items()}, self.space)

    def __add__(self, other: object) -> AdapterDelta:
        if isinstance(other, AdapterDelta):
            return self._combine(other, torch.add)
        if isinstance(other, (int, float)) and other == 0:
            return self
        return NotImplemented

    __radd__ = __add__  # makes ``sum(deltas)`` (which starts from 0) work

    def __sub__(self, other: object) -> AdapterDelta:
        if isinstance(other, AdapterDelta):
            return self._combine(other, torch.sub)
        return NotImplemented

    def __neg__(self) -> AdapterDelta:
        return self._map(torch.neg)

    def __mul__(self, scalar: object) -> AdapterDelta:
        if isinstance(scalar, (int, float)):
            return self._map(lambda t: t * scalar)
        return NotImplemented

    __rmul__ = __mul__

    def __truediv__(self, scalar: object) -> AdapterDelta:
        if isinstance(scalar, (int, float)):
            return self._map(lambda t: t / scalar)
        return NotImplemented

    def allclose(self, other: AdapterDelta, atol: float = 1e-6, rtol: float = 1e-5) -> bool:
        return self.layout == other.layout and all(
            torch.allclose(t.float(), other.tensors[n].float(), atol=atol, rtol=rtol)
            for n, t in self.tensors.items()
        )

    def __repr__(self) -> str:
        return f"AdapterDelta({len(self.tensors)} tensors, {self.layout.size} params, space={self.space!r})"


def split_head(state_dict: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Split a state dict into (body, head) by the ``head.`` prefix."""
    body = {n: t for n, t in state_dict.items() if not n.startswith(HEAD_PREFIX)}
    head = {n: t for n, t in state_dict.items() if n.startswith(HEAD_PREFIX)}
    return body, head


def mean_of(deltas: Sequence[AdapterDelta], weights: Sequence[float] | None = None) -> AdapterDelta:
    """Uniform mean of deltas, or ``sum(w_i d_i) / sum(|w_i|)`` with weights.

    Normalising by the sum of *absolute* weights keeps the usual weighted mean for positive weights while
    allowing signed combinations: weights [1, -1] of the same adapter give zero instead of 0 / 0. The
    ``average`` merge rule uses the same convention.
    """
    if not deltas:
        raise ValueError("mean_of needs at least one delta")
    if weights is None:
        # ``sum`` from the first delta rather than 0: the same result (0 + d is d), and typed as a delta.
        return sum(deltas[1:], deltas[0]) / len(deltas)
    if len(weights) != len(deltas):
        raise ValueError(f"{len(weights)} weights for {len(deltas)} deltas")
    total = sum(abs(w) for w in weights)
    if total == 0:
        raise ValueError("weights are all zero")
    terms = [d * (w / total) for d, w in zip(deltas, weights, strict=True)]
    return sum(terms[1:], terms[0])


@dataclass(frozen=True)
class StackedDeltas:
    """N adapters of one layout as one float32 matrix [N, P] (row i = ``deltas[i].flatten()``)."""

    matrix: Tensor
    layout: ParamLayout
    names: tuple[str, ...]
    space: str = "raw"

    def __len__(self) -> int:
        return len(self.names)

    def select(self, idx: Sequence[int] | Tensor) -> StackedDeltas:
        index = torch.as_tensor(idx, dtype=torch.long)
        names = tuple(self.names[i] for i in index.tolist())
        return StackedDeltas(self.matrix.index_select(0, index), self.layout, names, self.space)

    def delta(self, i: int) -> AdapterDelta:
        return AdapterDelta.unflatten(self.matrix[i], self.layout, self.space)

    def unstack(self) -> list[AdapterDelta]:
        return [self.delta(i) for i in range(len(self))]


def weighted_row_sum(pool: Tensor, index: Tensor, w: Tensor | None) -> Tensor:
    """sum_j w_j * pool[index[j]] accumulated in place, without materialising the [k, P] selection.

    The loop runs over the k selected adapters (few), each step a vectorised add over all P parameters;
    it reads each selected row once, about twice as fast as ``pool.index_select(0, index).sum(0)``.
    """
    rows = index.tolist()
    weights = [1.0] * len(rows) if w is None else w.tolist()
    out = pool[rows[0]] * weights[0] if weights[0] != 1.0 else pool[rows[0]].clone()
    for row, weight in zip(rows[1:], weights[1:], strict=True):
        out.add_(pool[row], alpha=weight)
    return out


def stack(deltas: Sequence[AdapterDelta], names: Sequence[str] | None = None) -> StackedDeltas:
    """Stack deltas of one layout and space into a :class:`StackedDeltas` (float32)."""
    if not deltas:
        raise ValueError("stack needs at least one delta")
    names = tuple(names) if names is not None else tuple(f"adapter{i}" for i in range(len(deltas)))
    if len(names) != len(deltas):
        raise ValueError(f"{len(names)} names for {len(deltas)} deltas")
    if len(set(names)) != len(names):
        raise IncompatibleAdaptersError(f"adapter names must be unique, got {list(names)}")
    layout = require_same_layout([d.layout for d in deltas], names)
    space = _require_same_space([d.space for d in deltas], names)
    return StackedDeltas(torch.stack([d.flatten() for d in deltas]), layout, names, space)


def to_dw(delta: AdapterDelta, alpha_over_r: float) -> AdapterDelta:
    """Replace each LoRA pair (``lora_A`` [r, in], ``lora_B`` [out, r]) of a site by its effective update.

    ``layers.{i}.{site}.dW = alpha_over_r * lora_B @ lora_A`` ([out, in]). Non-LoRA tensors pass through.
    LoRA factors are not identifiable ((B R)(R^-1 A) = B A), so sign statistics on raw factors partly
    measure an arbitrary gauge; dW is gauge-free. The result's space is "dw" when any pair was converted.
    """
    out: dict[str, Tensor] = {}
    converted = False
    for name, tensor in delta.tensors.items():
        prefix, param = name.rsplit(".", 1)
        if param == "lora_B":
            continue
        if param == "lora_A":
            partner = f"{prefix}.lora_B"
            if partner not in delta.tensors:
                raise IncompatibleAdaptersError(f"LoRA tensor {name!r} has no matching {partner!r}")
            out[f"{prefix}.dW"] = alpha_over_r * (delta.tensors[partner].float() @ tensor.float())
            converted = True
        else:
            out[name] = tensor
    orphans = [n for n in delta.tensors if n.endswith(".lora_B") and n[: -len("lora_B")] + "dW" not in out]
    if orphans:
        raise IncompatibleAdaptersError(f"LoRA tensor {orphans[0]!r} has no matching lora_A")
    return AdapterDelta(out, "dw" if converted else delta.space)


def bottleneck_shapes(
    n_layers: int, hidden: int, bottleneck: int, sites: Sequence[str] = ("attn", "ffn")
) -> dict[str, tuple[int, ...]]:
    """Tensor shapes of a bottleneck adapter under the naming convention (torch Linear layout [out, in])."""
    per_site = {
        "down.weight": (bottleneck, hidden),
        "down.bias": (bottleneck,),
        "up.weight": (hidden, bottleneck),
        "up.bias": (hidden,),
    }
    return {
        f"layers.{i}.{s}.{p}": shape for i in range(n_layers) for s in sites for p, shape in per_site.items()
    }


def lora_shapes(
    n_layers: int, hidden: int, rank: int, sites: Sequence[str] = ("query", "value")
) -> dict[str, tuple[int, ...]]:
    """Tensor shapes of a LoRA adapter on square projections: lora_A [r, in], lora_B [out, r]."""
    per_site = {"lora_A": (rank, hidden), "lora_B": (hidden, rank)}
    return {
        f"layers.{i}.{s}.{p}": shape for i in range(n_layers) for s in sites for p, shape in per_site.items()
    }


def random_delta(shapes: Mapping[str, tuple[int, ...]], seed: int = 0, space: str = "raw") -> AdapterDelta:
    """A delta of standard-normal tensors with the given shapes (tests and benchmarks)."""
    generator = torch.Generator().manual_seed(seed)
    return AdapterDelta({n: torch.randn(s, generator=generator) for n, s in shapes.items()}, space)
