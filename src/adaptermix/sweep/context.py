"""What a sweep loads once and how it evaluates one mixture: :class:`SweepContext` (encoder, pool, FSD,
live model, tokenised evaluation sets, the cache of target-independent mixtures) and :func:`evaluate_group`
(mix once, write into the live model, run every evaluation of the group).

Split from :mod:`adaptermix.sweep.runner` (which plans, runs and records sweeps and drives the ``adaptive``
generator's search) so that the search's evaluator (:mod:`adaptermix.recommend.live`) can evaluate mixtures
without importing the runner that calls it: no import cycle between ``sweep`` and ``recommend``.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from adaptermix.artefacts.artefact import check_base
from adaptermix.artefacts.pool import AdapterPool, load_pool
from adaptermix.backbone.loading import Encoder, load_encoder
from adaptermix.core.errors import ConfigError
from adaptermix.data.schema import Example
from adaptermix.diagnostics import SubsetStats, mean_pairwise, subset_stats
from adaptermix.evaluations.adapter import eval_rows, tokenized_eval_set
from adaptermix.evaluations.base import EvalSet
from adaptermix.evaluations.registry import EVALUATION_KINDS
from adaptermix.merging import MERGE_RULES, merge_flat
from adaptermix.merging.fsd_rules import sparse_fsd_record
from adaptermix.merging.lora_rules import lora_view
from adaptermix.sweep.live import LiveModel
from adaptermix.sweep.spec import SweepSpec, Trial, canonical_json
from adaptermix.sweep.store import TrialResult

log = logging.getLogger(__name__)


@dataclass
class SweepContext:
    """Everything loaded once per sweep (and once per Ray actor): encoder, pool, FSD, live model, eval sets."""

    spec: SweepSpec
    pool: AdapterPool
    encoder: Encoder
    live: LiveModel
    fsd: torch.Tensor
    eval_sets: dict[str, EvalSet] = field(default_factory=dict)
    #: texts -> [n, d] sentence embeddings for AdapterSoup's generators (None: the packaged MiniLM).
    sentence_encode: Callable[[list[str]], Any] | None = None
    #: Start clean evaluations from a cached frozen prefix per target (only the current target's batches
    #: are held; memory cap ``$ADAPTERMIX_PREFIX_CACHE_MB``). Off: every forward is a full one.
    prefix_cache: bool = True
    _spaces: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    #: Mixtures that do not depend on the target, by (space, subset, rule, params): the same k = N mixture
    #: of a static rule is computed once per sweep, not once per target (least recently used dropped
    #: beyond ``merge_cache_bytes``).
    _merged: OrderedDict[str, torch.Tensor] = field(default_factory=OrderedDict)
    merge_cache_bytes: int = 256 * 2**20

    @classmethod
    def prepare(
        cls, spec: SweepSpec, encoder: Encoder | None = None, examples: dict[str, list[Example]] | None = None
    ) -> SweepContext:
        """Load everything once. ``examples`` (target -> evaluation rows) skips reading the data again,
        e.g. on a Ray worker that was handed the driver's rows."""
        for evaluation in spec.evaluations:  # unknown names or parameters -> one-line errors before anything loads
            EVALUATION_KINDS.get(evaluation).parse(spec.eval_params(evaluation))
        for rule in spec.rules:
            merge_rule = MERGE_RULES.get(rule.name)
            if merge_rule.needs_base and spec.merge_space != "tv":
                raise ConfigError(f"rule {rule.name!r} is defined on task vectors: set merge_space: tv "
                                  f"(the spec has merge_space: {spec.merge_space})")
            if merge_rule.needs_lora and spec.merge_space != "raw":
                raise ConfigError(f"merge rule {rule.name!r} merges LoRA updates B A of the raw factors: "
                                  "use merge_space raw")
        if spec.subsets.adaptive:
            from adaptermix.recommend.search import STRATEGIES

            STRATEGIES.get(spec.subsets.strategy)
        pool = load_pool(spec.pool_dirs())
        for rule in spec.rules:
            if MERGE_RULES.get(rule.name).needs_lora:
                lora_view(pool.stacked.layout, rule.name)  # a non-LoRA pool: one line before the encoder loads
            if MERGE_RULES.get(rule.name).rank_sum and not pool.is_lora:
                raise ConfigError(f"merge rule {rule.name!r} writes a LoRA of rank sum(r_i): the pool's method is "
                                  f"{pool.method.get('name')!r}, not lora")
        encoder = encoder or load_encoder(pool.adapters[0].meta.base_model["name"], precision=spec.precision)
        if spec.precision in ("fp32", "bf16") and spec.precision != encoder.precision:
            raise ConfigError(f"the sweep asks for precision {spec.precision} but the encoder given is "
                              f"{encoder.precision}")
        # The resolved precision (never auto) goes into every trial key, the provenance and Ray workers.
        spec = spec.model_copy(update={"precision": encoder.precision})
        for adapter in pool.adapters:
            check_base(adapter, encoder)
        # A rank-growing rule (cat, knots: rank k r) in the spec: the live LoRA gets rank N r at the pool's
        # alpha / r and every mixture is written zero-padded into it (exact, see sweep.live); else the pool's.
        slots = len(pool.names) if any(MERGE_RULES.get(r.name).rank_sum for r in spec.rules) else 1
        live = LiveModel.build(encoder, pool.adapters[0], pool.stacked.layout, rank_slots=slots)
        # float64, as merge() uses, so greedy selection is identical on near-ties
        fsd = pool.fsd(spec.fsd_space).values
        ctx = cls(spec, pool, encoder, live, fsd)
        for target, rows in (examples or {}).items():
            ctx.eval_sets[target] = ctx._tokenized(target, rows)
        return ctx

    def _tokenized(self, target: str, rows: list[Example]) -> EvalSet:
        adapter = self.pool.adapters[self.pool.index(target)]
        es = tokenized_eval_set(adapter, self.encoder, rows, self.spec.max_length)
        es.prefix = self.live.model.frozen_prefix()
        return es

    def eval_set(self, target: str) -> EvalSet:
        """The target's evaluation split, capped (seeded, stratified) and tokenised once."""
        if target not in self.eval_sets:
            adapter = self.pool.adapters[self.pool.index(target)]
            rows = eval_rows(adapter, self.spec.split, self.spec.max_eval_examples, self.spec.seed, self.spec.data,
                             label=target)
            self.eval_sets[target] = self._tokenized(target, rows)
        es = self.eval_sets[target]
        for other, other_es in self.eval_sets.items():  # hold one target's prefix at a time (targets run in order)
            if other != target and other_es.prefix is not None:
                other_es.prefix.clear()
        if not self.prefix_cache:
            return EvalSet(es.info, es.examples, es.tokens, es.max_length)
        return es

    def merge_rows(self, space: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What the rules merge in ``space``: the raw pool rows (no base), or the task vectors and the
        shared init they are added back to (computed once)."""
        if space == "raw":
            return self.pool.flat, None
        if "tv" not in self._spaces:
            from adaptermix.artefacts.task_vectors import task_vectors

            self._spaces["tv"] = task_vectors(self.pool)
        return self._spaces["tv"]

    def mixture(self, trial: Trial) -> torch.Tensor:
        """The flat mixture of ``trial``'s subset under its rule, from the cache when the same mixture was
        computed for another target. Exact: a rule that does not give the target's view (``needs_target``)
        is a pure function of the subset, rule, parameters and space (DARE-like randomness is seeded by
        adapter name), so the cached vector is the one a recomputation would give."""
        names = self.pool.names
        idx = [names.index(n) for n in trial.subset]
        rows, base = self.merge_rows(trial.merge_space)

        def compute() -> torch.Tensor:
            return merge_flat(trial.rule, rows, idx, layout=self.pool.stacked.layout, keys=names, fsd=self.fsd,
                              target=trial.target, base=base, **dict(trial.rule_params))

        if MERGE_RULES.get(trial.rule).needs_target or self.merge_cache_bytes <= 0:
            return compute()
        key = canonical_json([trial.merge_space, sorted(trial.subset), trial.rule, dict(trial.rule_params)])
        cached = self._merged.get(key)
        if cached is not None:
            self._merged.move_to_end(key)
            return cached
        vector = compute()
        self._merged[key] = vector
        size = sum(v.numel() * v.element_size() for v in self._merged.values())
        while size > self.merge_cache_bytes and len(self._merged) > 1:
            _, dropped = self._merged.popitem(last=False)
            size -= dropped.numel() * dropped.element_size()
        return vector

    def close(self) -> None:
        self.live.close()


def _group_key(t: Trial) -> str:
    return canonical_json([t.target, list(t.subset), t.rule, dict(t.rule_params)])


def group_trials(trials: Iterable[Trial]) -> list[list[Trial]]:
    """Trials that share one mixture (target, subset, rule, params), in first-seen order."""
    groups: dict[str, list[Trial]] = {}
    for t in trials:
        groups.setdefault(_group_key(t), []).append(t)
    return list(groups.values())


def mixture_stats(
    ctx: SweepContext, idx: Sequence[int], tpos: int, vector: torch.Tensor, rank_sum: bool
) -> SubsetStats:
    """The trial's sign statistics of ``vector`` against the target. A rank-growing mixture (``cat``,
    ``knots``: rank k r) has no parameter-by-parameter counterpart in the target's rank-r factors, so its
    sign change and zeroed fraction are not defined (NaN, stored as null); its mean pairwise FSD is."""
    if not rank_sum:
        return subset_stats(ctx.pool.flat, ctx.fsd, idx, tpos, mixture=vector, space=ctx.spec.fsd_space)
    nan = float("nan")
    return SubsetStats(len(idx), mean_pairwise(ctx.fsd, idx), nan, nan, ctx.spec.fsd_space)


def _defined(x: float) -> float | None:
    return None if math.isnan(x) else x


def evaluate_group(ctx: SweepContext, group: Sequence[Trial]) -> list[TrialResult]:
    """Mix once, write the mixture into the live model, run every evaluation of the group."""
    first = group[0]
    names = ctx.pool.names
    idx = [names.index(n) for n in first.subset]
    tpos = names.index(first.target)
    started = time.perf_counter()
    layout = ctx.pool.stacked.layout
    vector = ctx.mixture(first)
    rule = MERGE_RULES.get(first.rule)
    stats = mixture_stats(ctx, idx, tpos, vector, rule.rank_sum)
    # Alg. 4 chooses adapters and layers: record which, per trial (metrics_json "mixed_adapters" and
    # "pruned_groups"), so a reader can see what the FSD guidance did.
    chosen = (
        sparse_fsd_record(ctx.pool.flat, idx, names, ctx.pool.stacked.layout, ctx.fsd, dict(first.rule_params))
        if first.rule == "sparse_fsd"
        else {}
    )
    ctx.live.write(vector, rule.output_layout(layout, len(idx)))
    ctx.live.use_head(first.target, ctx.pool.adapters[tpos])
    es = ctx.eval_set(first.target)
    mix_seconds = time.perf_counter() - started
    out = []
    for trial in group:
        t0 = time.perf_counter()
        kind = EVALUATION_KINDS.get(trial.evaluation)
        outcome = kind.run(ctx.live.model, es, trial.eval_params, trial.key, ctx.spec.batch_size)
        seconds = time.perf_counter() - t0 + (mix_seconds if trial is first else 0.0)
        out.append(TrialResult(
            trial=trial,
            metric_name=es.info.metric,
            metric=outcome.metric,
            metrics={**outcome.metrics, "target_sign_zeroed": _defined(stats.zeroed), **chosen},
            mean_pairwise_fsd=stats.mean_pairwise_fsd if first.k > 1 else None,
            target_sign_change=_defined(stats.flipped),
            fsd_space=stats.space,
            n_examples=len(es.examples),
            seconds=seconds,
            adversarial_examples=outcome.adversarial,
        ))
    return out
