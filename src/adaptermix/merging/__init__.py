"""Mixing adapters in weight space: pure functions on stacked tensors, rules registered by name.

``merge(rule, stacked, **params)`` mixes a :class:`~adaptermix.deltas.StackedDeltas`; ``merge_flat`` is
the sweep fast path on a pre-stacked pool. Rules (``MERGE_RULES``): ``average`` (AdapterSoup / Eq. 1),
``task_arithmetic``, ``ties``, ``dare_linear``, ``dare_ties`` (configurations of one sparsify x sign
consensus x aggregate pipeline), ``greedy_fsd`` / ``greedy_fsd_max`` (Alg. 1) and ``sparse_fsd``
(Alg. 4); mergekit's ``breadcrumbs``, ``breadcrumbs_ties``, ``della``, ``della_linear``, ``sce``
(:mod:`~adaptermix.merging.mergekit_rules`), ``karcher`` and ``multislerp``
(:mod:`~adaptermix.merging.sphere_rules`); FusionBench's ``tsv_m``, ``iso_c`` and ``iso_cts``
(:mod:`~adaptermix.merging.subspace_rules`); mergekit's ``model_stock``, ``ram`` and ``ramplus_tl``, defined
on task vectors only (``needs_base``: pass the pool's shared init as ``base``;
:mod:`~adaptermix.merging.base_rules`); the per-domain views ``emr`` and ``tall_mask`` (they need
the ``target``) and the static ``consensus_ta`` (:mod:`~adaptermix.merging.masked_rules`, stored as one
artefact by :mod:`adaptermix.artefacts.masked`); peft's LoRA rules ``svd``, ``ties_svd``, ``dare_linear_svd``,
``dare_ties_svd``, ``magnitude_prune_svd``, ``cat``, KnOTS (``knots``) and the generic ``magnitude_prune``
(:mod:`~adaptermix.merging.lora_rules`; ``cat`` and ``knots`` return a LoRA of rank sum(r_i)). Every rule works in the space of its input stack ("raw" or
"dw", see ``deltas.to_dw``); ``average_lora_dw`` is the exact dW average of LoRAs kept as a (higher-rank) LoRA.
"""

from adaptermix.merging import (  # noqa: F401  (registers the rules)
    base_rules,
    fsd_rules,
    generalized,
    lora_rules,
    masked_rules,
    mergekit_rules,
    sphere_rules,
    subspace_rules,
)
from adaptermix.merging.base import MERGE_RULES, MergeContext, MergeRule, merge, merge_flat, rule_table
from adaptermix.merging.compat import check_mixable, require_same
from adaptermix.merging.fsd_rules import SELECTING_RULES, greedy_selection, rule_selection, select_by_fsd
from adaptermix.merging.heads import HEAD_MODES, mix_heads
from adaptermix.merging.lora import average_lora_dw, concat_lora
from adaptermix.merging.steps import generalized_merge

__all__ = [
    "HEAD_MODES",
    "MERGE_RULES",
    "MergeContext",
    "MergeRule",
    "average_lora_dw",
    "concat_lora",
    "check_mixable",
    "generalized_merge",
    "greedy_selection",
    "rule_selection",
    "SELECTING_RULES",
    "merge",
    "merge_flat",
    "mix_heads",
    "require_same",
    "rule_table",
    "select_by_fsd",
]
