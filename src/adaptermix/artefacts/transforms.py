"""Artefact transforms: an adapter artefact in, a new one out (library functions behind ``mix``,
``prune``, ``adamix merge`` and the training job's derived artefacts).

- :func:`mix_pool`: several adapters mixed by a merge rule. A mixture is an ordinary adapter artefact —
  the mixed body with the target domain's own head (or the average head when all label sets are
  identical) — whose ``adapter.json`` records its provenance: which adapters, which rule, which
  parameters, which space.
- :func:`prune_adapter`: one adapter's body magnitude-pruned.
- :func:`derive_adapter` / :func:`write_derived`: a method's :class:`~adaptermix.methods.base.Derivation`
  applied to one adapter (AdaMix's expert merging: :func:`average_experts`, :func:`average_experts_artefact`).

Every transform stamps its metadata the one way, :func:`derived_meta`: the source's metadata copied, the
method config and provenance replaced, ``created_at`` now; metrics are dropped (a mixture or a pruned
adapter has not been evaluated) except for a derivation, whose result computes what its source computed
(AdaMix's unmerged body evaluates in MERGED mode, i.e. as the merged adapter).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

from adaptermix.artefacts.artefact import Adapter, AdapterMeta, load_adapter, save_adapter
from adaptermix.artefacts.pool import AdapterPool
from adaptermix.core.errors import ConfigError
from adaptermix.core.timestamps import utc_stamp
from adaptermix.deltas import AdapterDelta
from adaptermix.merging import MERGE_RULES, SELECTING_RULES, merge, mix_heads, rule_selection
from adaptermix.methods import LoRAConfig, MethodConfig
from adaptermix.methods.adamix.merging import MERGE_EXPERTS
from adaptermix.methods.base import Derivation
from adaptermix.pruning import magnitude_prune


def derived_meta(
    base: Adapter, provenance: dict[str, Any], method: dict[str, Any] | None = None, keep_metrics: bool = False
) -> AdapterMeta:
    """The metadata of an artefact made from ``base``: ``base``'s copied, ``method`` (if given) and
    ``provenance`` replaced, ``created_at`` now, metrics dropped unless ``keep_metrics``."""
    meta = copy.deepcopy(base.meta)
    return replace(meta, method=method or meta.method, metrics=meta.metrics if keep_metrics else {},
                   provenance=provenance, created_at=utc_stamp())


def mix_pool(
    pool: AdapterPool,
    rule: str,
    target: str | None = None,
    space: str = "raw",
    head_mode: str = "target",
    **params: Any,
) -> Adapter:
    """Mix the adapters of ``pool`` with ``rule`` into one in-memory artefact for ``target``.

    A selecting rule (``greedy_fsd``, ``greedy_fsd_max``, ``sparse_fsd`` with ``l``) mixes only its choice;
    with a ``target`` the choice always contains it (the target plus the l - 1 best others, as the sweep's
    greedy generator), without one the head is the first chosen adapter's. The provenance lists exactly the
    adapters whose weights went in (``adapters``) and, separately, every input (``candidates``).

    ``space`` "raw" mixes parameters as stored (the paper's Eq. 1 on LoRA factors); "tv" mixes task vectors
    (each adapter minus the pool's shared initialisation, :mod:`adaptermix.artefacts.task_vectors`) and adds that init
    back; "dw" (LoRA, rule ``average`` only) averages the effective updates exactly, as a LoRA of rank k*r
    (rule ``cat`` with normalised weights). The rank-growing rules ``cat`` and ``knots`` (raw space) write a
    LoRA of rank k*r too, with alpha = (alpha / r) * k*r so that the pool's scale alpha / r is kept.
    A per-domain rule (``emr``, ``tall_mask``) gives the ``target``'s view and needs it; a rule defined on
    task vectors only (``model_stock``, ``ram``, ``ramplus_tl``: ``needs_base``) needs space "tv".
    """
    if space not in ("raw", "tv", "dw"):
        raise ConfigError(f"unknown space {space!r}; valid: raw, tv, dw")
    if space != "tv" and MERGE_RULES.get(rule).needs_base:
        raise ConfigError(f"rule {rule!r} is defined on task vectors: use space 'tv' (got {space!r})")
    if target is not None:
        pool.index(target)  # an unknown target is the user's error, named as such
    given_target = target
    base = None
    if space == "tv":
        from adaptermix.artefacts.task_vectors import tv_stack

        stacked, base = tv_stack(pool)
    else:
        stacked = pool.stacked_in("raw")
    given = dict(params)
    # The adapters whose weights go in: all of them, or a selecting rule's choice (Alg. 1 / 4), which keeps
    # the target when one is named (as the sweep's greedy generator does) and otherwise gives the head.
    if rule in SELECTING_RULES and space != "dw":
        used = rule_selection(rule, stacked, params.get("l"), target)
        if "l" in params:
            params = {**params, "l": None}  # the selection is made: the rule mixes every adapter given
    else:
        used = tuple(pool.names)
    if target is None:
        target = used[0]
    elif target not in used:  # not reachable for the rules above; a safety net for future selecting rules
        raise ConfigError(f"rule {rule!r} left the target {target!r} out of the mixture; its head would be "
                          "paired with other adapters' weights")
    chosen = [pool.index(n) for n in used]
    tpos = pool.index(target)
    tgt = pool.adapters[tpos]
    method = dict(tgt.meta.method)
    if space == "dw":
        if rule != "average":
            raise ConfigError(f"rule {rule!r} in space 'dw' gives a dense update that is not a LoRA; "
                              "only 'average' can be written in space 'dw' (or use rule cat or knots)")
        weights = params.pop("weights", None)
        if params:
            raise ConfigError(f"unexpected parameter(s) for average in space dw: {', '.join(sorted(params))}")
        # = rule cat with normalised weights (pool adapters share alpha / r), kept as a LoRA of rank k * r
        body = merge("cat", pool.stacked, weights=weights, normalize=True)
        _summed_rank(method, len(pool.names))
    else:
        body = merge(rule, stacked.select(chosen), target=given_target, base=base, **params)
        if MERGE_RULES.get(rule).rank_sum:  # cat, knots: a LoRA of rank sum(r_i), at the pool's alpha / r
            _summed_rank(method, len(chosen))
    heads = [pool.adapters[i].head for i in chosen]
    labels = [
        tuple(a.meta.task.get("label_names", ())) + (a.meta.task.get("problem", ""),)
        for a in (pool.adapters[i] for i in chosen)
    ]
    head = mix_heads(heads, labels, head_mode, used.index(target))
    provenance = {
        "kind": "mixed",
        "rule": rule,
        "space": space,
        "params": given,
        "target": target,
        "head": head_mode,
        # Exactly the adapters whose weights went in; ``candidates``: every adapter the rule was given.
        "adapters": [_ref(pool, i) for i in chosen],
        "candidates": [_ref(pool, i) for i in range(len(pool.names))],
    }
    tensors = {**body.to_state_dict(), **head}
    return Adapter(derived_meta(tgt, provenance, method), tensors)


def _summed_rank(method: dict[str, Any], k: int) -> None:
    """A LoRA method config for the rank k * r of a rank-growing mixture, alpha scaled so alpha / r is kept."""
    cfg = MethodConfig.from_saved(method)
    if not isinstance(cfg, LoRAConfig):
        raise ConfigError(f"a rank-growing mixture needs LoRA adapters, not {cfg.name!r}")
    rank = cfg.rank * k
    method.update(rank=rank, alpha=cfg.scale * rank)


def _ref(pool: AdapterPool, i: int) -> dict[str, Any]:
    a = pool.adapters[i]
    return {"name": pool.names[i], "path": str(a.path) if a.path else None}


def prune_adapter(adapter: Adapter, sparsity: float, scope: str = "global") -> Adapter:
    """Magnitude-prune an adapter's body to ``sparsity`` (Alg. 2, exact count); the head is kept dense."""
    body = magnitude_prune(AdapterDelta.from_state_dict(adapter.body), sparsity, scope)
    provenance = {"kind": "pruned", "sparsity": sparsity, "scope": scope,
                  "source": str(adapter.path) if adapter.path else adapter.name,
                  "source_provenance": adapter.meta.provenance}
    return Adapter(derived_meta(adapter, provenance), {**body.to_state_dict(), **adapter.head})


def derived_path(src: str | Path, derivation: Derivation) -> Path:
    """Where the artefact ``derivation`` derives from ``src`` is written: the sibling ``<src><suffix>``."""
    p = Path(src)
    return p.with_name(p.name + derivation.suffix)


def derive_adapter(adapter: Adapter, derivation: Derivation) -> Adapter:
    """``derivation`` applied to ``adapter`` (a method's derived artefact, e.g. AdaMix's merged adapter):
    tensors, method config and provenance replaced, the rest of the metadata (metrics included) carried
    over, stamped now."""
    cfg = adapter.meta.method_config
    method = derivation.method(cfg).model_dump(mode="json")
    provenance = derivation.provenance(cfg, adapter.meta.provenance, str(adapter.path) if adapter.path else None)
    return Adapter(derived_meta(adapter, provenance, method, keep_metrics=True), derivation.tensors(adapter.tensors))


def write_derived(src: str | Path, derivation: Derivation, out: str | Path | None = None) -> Path:
    """Read the artefact ``src``, write what ``derivation`` derives from it to ``out`` (default
    :func:`derived_path`), atomically; the source's ``config.yaml`` is kept as ``source_config.yaml``."""
    derived = derive_adapter(load_adapter(src), derivation)
    extra = {}
    config = Path(src) / "config.yaml"
    if config.is_file():
        extra["source_config.yaml"] = config.read_text(encoding="utf-8")
    return save_adapter(derived_path(src, derivation) if out is None else out, derived.tensors, derived.meta, extra)


def average_experts(adapter: Adapter) -> Adapter:
    """AdaMix Eq. 6: the merged (ordinary houlsby/pfeiffer) adapter of an unmerged AdaMix adapter."""
    return derive_adapter(adapter, MERGE_EXPERTS)


def average_experts_artefact(src: str | Path, out: str | Path | None = None) -> Path:
    """Read the unmerged AdaMix artefact ``src``, write its merged adapter to ``out`` (default
    :func:`merged_path`), atomically."""
    return write_derived(src, MERGE_EXPERTS, out)


def merged_path(artefact_dir: str | Path) -> Path:
    """Where the training job writes the merged adapter of an AdaMix ``artefact_dir``: ``<dir>-merged``."""
    return derived_path(artefact_dir, MERGE_EXPERTS)
