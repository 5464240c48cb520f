"""Merge-rule records, their registry and the two entry points ``merge`` and ``merge_flat``.

Every rule is a pure function ``fn(ctx, **params) -> Tensor[P]`` of the stacked adapters (``ctx.rows()``
is [k, P], one row per adapter; linear rules reduce straight from the pool), in the style of arcee-ai/mergekit and peft ``utils/merge_utils.py``: no model code,
no Python loop over parameters. Rules work in whatever space the stack is in: raw parameters (the
paper's Eq. 1) or LoRA effective updates (stack deltas made by :func:`adaptermix.deltas.to_dw`); the
result carries the stack's space.

Rules that produce a *per-domain view* (``emr``, ``tall_mask``) need to know the target domain: callers
pass ``target`` (a key of the selection; the in-domain setting of the paper always knows it), and such a
rule declares ``needs_target`` and raises a one-line error without it. Other rules ignore ``target``.

Rules whose method is only defined relative to a base model (mergekit's ``model_stock`` and ``ram``: the
angle between, or the overlap of, the fine-tuning offsets) declare ``needs_base``: they merge task-vector
rows, so callers must pass the pool's shared initialisation as ``base`` (``merge_space: tv`` in a sweep,
``mix --space tv``); without one :func:`merge_flat` refuses with a one-line error rather than silently
treating raw parameters as offsets from zero.

Permutation invariance by construction: ``merge_flat`` puts the selected adapters in a canonical order
(sorted by their keys = adapter names) before calling a rule, reordering per-adapter parameters such as
``weights`` with them. Float sums then run in the same order whatever order the user listed the adapters
in, and seeded randomness (DARE) is derived from seed + adapter key, never from a position.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from adaptermix.core.errors import ConfigError
from adaptermix.core.registry import Registry
from adaptermix.deltas import AdapterDelta, ParamLayout, StackedDeltas
from adaptermix.diagnostics.conflicts import fsd_matrix_flat
from adaptermix.pruning.base import resolve_params


@dataclass(frozen=True)
class MergeContext:
    """The adapters to mix, as rows ``index`` of a pre-stacked ``pool`` [N, P], and what rules may need.

    ``index`` is already in canonical order; ``keys[j]`` names row ``index[j]``; ``fsd`` is the [k, k]
    FSD matrix of those rows when the caller pre-computed the pool's matrix; ``layout`` is needed by
    per-layer rules; ``target`` names the domain whose view a per-domain rule returns (None: not known).
    Rules call :meth:`rows` to materialise [k, P], or reduce straight from the pool.
    """

    pool: Tensor
    index: Tensor
    keys: tuple[str, ...]
    layout: ParamLayout | None = None
    fsd: Tensor | None = None
    target: str | None = None

    @property
    def k(self) -> int:
        return self.index.numel()

    def rows(self) -> Tensor:
        return self.pool.index_select(0, self.index)

    def fsd_matrix(self) -> Tensor:
        """The [k, k] FSD matrix of the rows: the pre-computed one when available."""
        return self.fsd if self.fsd is not None else fsd_matrix_flat(self.rows())

    def require_layout(self, rule: str) -> ParamLayout:
        if self.layout is None:
            raise ConfigError(f"merge rule {rule!r} needs the adapters' parameter layout")
        return self.layout

    def require_target(self, rule: str) -> int:
        """Position of the target among the rows (``keys``); a one-line error when it is unknown or absent."""
        if self.target is None:
            raise ConfigError(f"merge rule {rule!r} gives one domain's view: it needs the target domain (target=...)")
        if self.target not in self.keys:
            raise ConfigError(f"merge rule {rule!r}: the target {self.target!r} is not among the adapters mixed "
                              f"({', '.join(self.keys)})")
        return self.keys.index(self.target)


@dataclass(frozen=True)
class MergeRule:
    """A named merge rule: what it computes, where it comes from and which parameters it takes."""

    name: str
    reference: str
    description: str  # one line, for ``adaptermix list rules`` and the README
    fn: Callable[..., Tensor]
    params: Mapping[str, Any] = field(default_factory=dict)  # every parameter with its default
    space: str = "raw parameters"  # the space the rule is defined in by its paper
    per_adapter: tuple[str, ...] = ()  # parameters holding one value per input adapter (reordered with them)
    idempotent: bool = True  # mixing copies of one adapter returns it (false for sums)
    identity_params: Mapping[str, Any] | None = field(default_factory=dict)
    # ^ parameters under which mixing a single adapter returns it unchanged (None: no such setting)
    needs_target: bool = False  # the result is the target domain's view (``target`` must be given)
    needs_base: bool = False  # defined on task vectors only: ``base`` (the shared init) must be given
    needs_lora: bool = False  # merges LoRA updates B A: needs lora_A/lora_B pairs, as raw factors (no base)
    rank_sum: bool = False  # the result is a LoRA of rank sum(r_i): another layout (``output_layout``)

    def output_layout(self, layout: ParamLayout, k: int) -> ParamLayout:
        """The layout of this rule's result for k adapters of ``layout`` (the input's, unless ``rank_sum``)."""
        if not self.rank_sum:
            return layout
        from adaptermix.merging.lora import summed_rank_layout

        return summed_rank_layout(layout, k)


def require_base(rule: MergeRule, base: Tensor | None) -> None:
    """A one-line ConfigError when ``rule`` needs a base (task-vector rows) and none is given."""
    if rule.needs_base and base is None:
        raise ConfigError(
            f"merge rule {rule.name!r} is defined on task vectors: it needs the pool's shared init as base "
            "(merge_space: tv in a sweep, --space tv for mix, base=... in the API)"
        )


MERGE_RULES: Registry[MergeRule] = Registry("merge rule")


def merge_flat(
    rule: str | MergeRule,
    pool_flat: Tensor,
    idx: Sequence[int] | Tensor,
    *,
    layout: ParamLayout | None = None,
    keys: Sequence[str] | None = None,
    fsd: Tensor | None = None,
    target: str | None = None,
    base: Tensor | None = None,
    **params: Any,
) -> Tensor:
    """Mix rows ``idx`` of a pre-stacked pool [N, P] into one vector [P] (the fast path for sweeps).

    ``keys`` name the pool rows (default: their indices) and seed per-adapter randomness; ``fsd`` is the
    pool's [N, N] FSD matrix, computed once per pool instead of once per trial; ``layout`` is needed by
    per-layer rules (``sparse_fsd``); ``target`` (a key) is the domain whose view a per-domain rule
    (``needs_target``) returns. ``base`` [P]: the pool rows are task vectors (weights minus this shared
    initialisation, see :func:`adaptermix.artefacts.task_vectors.task_vectors`); the rule merges them and the result
    is ``rule(rows) + base``, weights again (task-vector space). None: the rows are merged as they are;
    a rule that ``needs_base`` then refuses (a zero base may be passed to merge rows that already are
    task vectors and get the merged task vector back).
    A ``rank_sum`` rule (``cat``, ``knots``) returns a vector of ``rule.output_layout(layout, k)``.
    """
    rule = MERGE_RULES.get(rule) if isinstance(rule, str) else rule
    require_base(rule, base)
    if rule.needs_lora and base is not None:
        raise ConfigError(f"merge rule {rule.name!r} merges LoRA updates B A of the raw factors: "
                          "use the raw merge space, not task vectors")
    params = resolve_params("merge rule", rule.name, rule.params, params)
    index = torch.as_tensor(idx, dtype=torch.long).reshape(-1)
    if index.numel() == 0:
        raise ConfigError("cannot mix an empty set of adapters")
    pool_keys = tuple(keys) if keys is not None else tuple(str(i) for i in range(pool_flat.shape[0]))
    selected = [pool_keys[i] for i in index.tolist()]
    order = sorted(range(len(selected)), key=selected.__getitem__)
    index = index[order]
    for name in rule.per_adapter:
        if params[name] is not None:
            values = list(params[name])
            if len(values) != len(order):
                raise ConfigError(f"{name} has {len(values)} values for {len(order)} adapters")
            params[name] = [values[i] for i in order]
    sub_fsd = fsd.index_select(0, index).index_select(1, index) if fsd is not None else None
    ctx = MergeContext(pool_flat, index, tuple(selected[i] for i in order), layout, sub_fsd, target)
    out = rule.fn(ctx, **params)
    if base is None:
        return out
    if base.shape != out.shape:
        raise ConfigError(f"base has {base.numel()} parameters but the adapters have {out.numel()}")
    return out + base


def merge(
    rule_name: str, stacked: StackedDeltas, *, target: str | None = None, base: Tensor | None = None,
    **params: Any,
) -> AdapterDelta:
    """Mix all adapters of ``stacked`` with the registered rule ``rule_name``; same layout and space
    (a ``rank_sum`` rule: LoRA factors of rank sum(r_i), see :meth:`MergeRule.output_layout`).

    ``target`` and ``base`` as in :func:`merge_flat` (a per-domain rule's target; the shared init that
    task-vector rows are relative to, added back to the result).
    """
    out = merge_flat(
        rule_name, stacked.matrix, range(len(stacked)), layout=stacked.layout, keys=stacked.names,
        target=target, base=base, **params,
    )
    layout = MERGE_RULES.get(rule_name).output_layout(stacked.layout, len(stacked))
    return AdapterDelta.unflatten(out, layout, stacked.space)


def rule_table() -> list[dict[str, Any]]:
    """One row per registered rule (name, reference, space, parameters, description) for docs and the CLI."""
    return [
        {
            "name": r.name,
            "reference": r.reference,
            "space": r.space,
            "params": dict(r.params),
            "needs_target": r.needs_target,
            "needs_base": r.needs_base,
            "needs_lora": r.needs_lora,
            "rank_sum": r.rank_sum,
            "description": r.description,
        }
        for _, r in MERGE_RULES.items()
    ]
