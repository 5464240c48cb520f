"""Run a budgeted search on a real pool: every evaluation is an ordinary sweep trial in a results store.

The trials are built exactly as a sweep spec with the same fields expands them (tag ``""``, the resolved
precision), so their keys are the keys of the exhaustive sweep: a recommendation reuses what a sweep
already measured, a rerun of the same search evaluates nothing again, and a later exhaustive sweep skips
what the search measured.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adaptermix.errors import ArtefactError
from adaptermix.recommend.features import Candidate, Measured, PoolFacts
from adaptermix.sweep.spec import SweepSpec, Trial


@dataclass
class LiveEvaluator:
    """``evaluate`` for :func:`adaptermix.recommend.search.search` over one sweep spec and store.

    ``new`` / ``reused`` count the evaluations that ran and those read back from the store."""

    spec: SweepSpec
    store_path: Path
    progress: bool = True
    new: int = 0
    reused: int = 0
    _ctx: Any = None
    _store: Any = None
    _done: dict[str, Measured] = field(default_factory=dict)

    def __enter__(self) -> LiveEvaluator:
        from adaptermix.sweep.runner import SweepContext
        from adaptermix.sweep.store import Provenance, ResultsStore

        self._ctx = SweepContext.prepare(self.spec)
        self.spec = self._ctx.spec  # precision resolved
        self._store = ResultsStore(self.store_path)
        pool = self._ctx.pool
        self._store.check_adapters({n: a.weights_sha256() for n, a in zip(pool.names, pool.adapters, strict=True)})
        self._store.begin_run(Provenance.collect(json.dumps(self.spec.model_dump(mode="json"), sort_keys=True),
                                                 self._ctx.encoder.fingerprint, self.spec.seed))
        for row in self._store.rows():
            if row["metric"] is None:  # a non-finite metric (stored as null): nothing to reuse or learn from
                continue
            self._done[row["key"]] = Measured(_candidate(json.loads(row["trial_json"])), float(row["metric"]),
                                              row["target_sign_change"])
        return self

    def __exit__(self, *exc: object) -> None:
        if self._store is not None:
            self._store.close()
        if self._ctx is not None:
            self._ctx.close()

    @property
    def facts(self) -> PoolFacts:
        """Names and FSD of the pool (similarity is added by the caller when it is known)."""
        return PoolFacts(tuple(self._ctx.pool.names), self._ctx.fsd.double().numpy())

    def trial(self, c: Candidate) -> Trial:
        """The sweep trial of a candidate (the first evaluation of the spec)."""
        s = self.spec
        evaluation = s.evaluations[0]
        return Trial(target=c.target, subset=c.subset, rule=c.rule, rule_params=c.rule_params, split=s.split,
                     evaluation=evaluation, eval_params=s.eval_params(evaluation),
                     max_eval_examples=s.max_eval_examples, seed=s.seed, max_length=s.max_length, tag="",
                     precision=str(s.precision))

    def sign_change(self, c: Candidate) -> float:
        """Fraction of the target's weights whose sign the candidate's mixture flips (no evaluation)."""
        from adaptermix.diagnostics import subset_stats
        from adaptermix.merging.base import merge_flat

        pool = self._ctx.pool
        names = pool.names
        idx = [names.index(n) for n in c.subset]
        vector = merge_flat(c.rule, pool.flat, idx, layout=pool.stacked.layout, keys=names, fsd=self._ctx.fsd,
                            **dict(c.rule_params))
        return float(subset_stats(pool.flat, self._ctx.fsd, idx, names.index(c.target), mixture=vector,
                                  space=self.spec.fsd_space).flipped)

    def __call__(self, cands: Sequence[Candidate]) -> list[Measured]:
        from adaptermix.sweep.runner import evaluate_group

        out = []
        for c in cands:
            t = self.trial(c)
            if t.key in self._done:
                self.reused += 1
            else:
                results = evaluate_group(self._ctx, [t])
                self._store.record(results)
                r = results[0]
                if r.metric is None or not math.isfinite(r.metric):
                    raise ArtefactError(f"{c.describe()}: the evaluation gave no finite {r.metric_name} "
                                        f"({r.metric}); a search cannot rank it")
                self._done[t.key] = Measured(c, float(r.metric), r.target_sign_change)
                self.new += 1
                if self.progress:
                    print(f"  evaluated {c.describe()}: {r.metric:.4f}", flush=True)
            out.append(self._done[t.key])
        return out

    def prior(self) -> list[Measured]:
        """Every mixture of the store measured exactly as this search measures (same evaluation, split,
        caps, seed and precision: the stored key is the key this spec gives the mixture)."""
        return [m for key, m in self._done.items()
                if m.candidate.target in self._ctx.pool.names and all(n in self._ctx.pool.names for n in m.candidate.subset)
                and self.trial(m.candidate).key == key]


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
