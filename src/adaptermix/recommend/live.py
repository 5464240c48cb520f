"""Run a budgeted search on a real pool: every evaluation is an ordinary sweep trial in a results store.

The trials are built exactly as a sweep spec with the same fields expands them (tag ``""``, the resolved
precision), so their keys are the keys of the exhaustive sweep: a recommendation reuses what a sweep
already measured, a rerun of the same search evaluates nothing again, and a later exhaustive sweep skips
what the search measured.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from adaptermix.core.errors import ArtefactError
from adaptermix.recommend.features import Candidate, Measured, PoolFacts
from adaptermix.sweep.spec import RuleSpec, SweepSpec, Trial


class StoreEvaluator:
    """``evaluate`` for :func:`adaptermix.recommend.search.search` on a prepared sweep context and open store.

    A candidate becomes the group of trials the spec gives it (one per evaluation of the spec; the first
    evaluation's metric is what the search maximises); a trial already in the store is read back, not run.
    ``new`` / ``reused`` count candidates evaluated now and read back; ``on_results`` sees every recorded
    group (the sweep's progress bar)."""

    def __init__(self, ctx: Any, store: Any, on_results: Callable[[list[Any]], None] | None = None,
                 progress: bool = False) -> None:
        self.ctx, self.store, self.on_results, self.progress = ctx, store, on_results, progress
        self.spec: SweepSpec = ctx.spec
        self.new = self.reused = 0
        self._done: dict[str, Measured] = {}
        for row in store.rows():
            if row["metric"] is not None:  # a non-finite metric (stored as null): nothing to reuse or learn from
                self._done[row["key"]] = Measured(_candidate(json.loads(row["trial_json"])), float(row["metric"]),
                                                  row["target_sign_change"])

    @property
    def facts(self) -> PoolFacts:
        """Names and FSD of the pool (similarity is added by the caller when it is known)."""
        return PoolFacts(tuple(self.ctx.pool.names), self.ctx.fsd.double().numpy())

    def trials(self, c: Candidate) -> list[Trial]:
        """The sweep trials of a candidate, one per evaluation of the spec (the objective's first)."""
        rule = RuleSpec(name=c.rule, params=dict(c.rule_params))
        return [self.spec.trial(c.target, c.subset, rule, e) for e in self.spec.evaluations]

    def sign_change(self, c: Candidate) -> float | None:
        """Fraction of the target's weights whose sign the candidate's mixture flips (no evaluation); None
        for a rank-growing rule (``cat``, ``knots``), whose factors have no counterpart in the target's."""
        from adaptermix.diagnostics import subset_stats
        from adaptermix.merging.base import MERGE_RULES, merge_flat

        if MERGE_RULES.get(c.rule).rank_sum:
            return None
        pool = self.ctx.pool
        names = pool.names
        idx = [names.index(n) for n in c.subset]
        rows, base = self.ctx.merge_rows(self.spec.merge_space)
        vector = merge_flat(c.rule, rows, idx, layout=pool.stacked.layout, keys=names, fsd=self.ctx.fsd, base=base,
                            target=c.target, **dict(c.rule_params))
        return float(subset_stats(pool.flat, self.ctx.fsd, idx, names.index(c.target), mixture=vector,
                                  space=self.spec.fsd_space).flipped)

    def __call__(self, cands: Sequence[Candidate]) -> list[Measured]:
        from adaptermix.sweep.context import evaluate_group

        out = []
        for c in cands:
            trials = self.trials(c)
            todo = [t for t in trials if t.key not in self._done]
            if not todo:
                self.reused += 1
            else:
                results = evaluate_group(self.ctx, todo)
                self.store.record(results)
                if self.on_results is not None:
                    self.on_results(results)
                for t, r in zip(todo, results, strict=True):
                    if r.metric is None or not math.isfinite(r.metric):
                        raise ArtefactError(f"{c.describe()}: the evaluation gave no finite {r.metric_name} "
                                            f"({r.metric}); a search cannot rank it")
                    self._done[t.key] = Measured(c, float(r.metric), r.target_sign_change)
                self.new += 1
                if self.progress:
                    print(f"  evaluated {c.describe()}: {self._done[trials[0].key].metric:.4f}", flush=True)
            out.append(self._done[trials[0].key])
        return out

    def prior(self) -> list[Measured]:
        """Every mixture of the store measured exactly as this search measures (same evaluation, split,
        caps, seed and precision: the stored key is the key this spec gives the mixture)."""
        names = set(self.ctx.pool.names)
        return [m for key, m in self._done.items()
                if set(m.candidate.subset) <= names and self.trials(m.candidate)[0].key == key]


@contextmanager
def live_evaluator(spec: SweepSpec, store_path: str | Path, progress: bool = True,
                   encoder: Any = None) -> Iterator[StoreEvaluator]:
    """Prepare the sweep context and open (or create) the store for a search outside a sweep; the store
    checks the pool's weights as a sweep does and records a run with the spec as provenance."""
    from adaptermix.sweep.context import SweepContext
    from adaptermix.sweep.store import Provenance, ResultsStore

    ctx = SweepContext.prepare(spec, encoder)
    try:
        with ResultsStore(store_path) as store:
            pool = ctx.pool
            store.check_adapters({n: a.weights_sha256() for n, a in zip(pool.names, pool.adapters, strict=True)})
            store.begin_run(Provenance.collect(json.dumps(ctx.spec.model_dump(mode="json"), sort_keys=True),
                                               ctx.encoder.fingerprint, ctx.spec.seed))
            yield StoreEvaluator(ctx, store, progress=progress)
    finally:
        ctx.close()


def _candidate(trial: dict[str, Any]) -> Candidate:
    return Candidate(trial["target"], tuple(trial["subset"]), trial["rule"], trial.get("rule_params") or {})


def with_similarity(facts: PoolFacts, pool_dirs: dict[str, Path], cache: Path, data_dir: str | None = None,
                    n_docs: int = 300) -> PoolFacts:
    """The facts plus Fig. 2a's dataset similarity (centroids of MiniLM embeddings of training texts)."""
    from adaptermix.analysis.similarity import centroid_similarity, load_sentence_encoder
    from adaptermix.recommend.adaptersoup import cached_domain_embeddings, domain_centroids, pool_texts

    texts = pool_texts(pool_dirs, n_docs=n_docs, data_dir=data_dir)
    cents = domain_centroids(cached_domain_embeddings(cache, texts, load_sentence_encoder()))
    mat = centroid_similarity(np.stack([cents[n] for n in facts.names]))
    return PoolFacts(facts.names, facts.fsd, np.asarray(mat, dtype=np.float64))
