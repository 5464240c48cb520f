"""The sweep runner: expand a spec, skip finished trials, evaluate every mixture, stream into the store.

Load the encoder once; pre-stack the pool so a subset's mixture is an index-select plus a reduction;
write each mixture into one live adapter slot in place (:class:`~adaptermix.sweep.live.LiveModel`; a spec
with a rank-growing LoRA rule, ``cat`` or ``knots``, gets a live LoRA of rank N r and every mixture is
written zero-padded into it, which is exact);
tokenise each target's evaluation set once; evaluate with length-bucketed dynamic padding under
``torch.inference_mode``, each clean forward starting from the target's cached frozen prefix
(:mod:`adaptermix.backbone.prefix`: the encoder's work before the first adapter site, computed on the
first mixture of a target and reused by every other; bit-identical logits). Trials that share (target, subset, rule) share one mixture: it is computed and
written once and every evaluation (the trial's registered kind: clean, FGSM, TextFooler ...) runs on it. Results are committed to the
store after every mixture, so a kill loses at most the mixture in flight.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from adaptermix.backbone.loading import Encoder
from adaptermix.sweep.context import (  # noqa: F401  (re-exported: their home before the split)
    SweepContext,
    evaluate_group,
    group_trials,
    mixture_stats,
)
from adaptermix.sweep.spec import SweepSpec, Trial, expand, shard
from adaptermix.sweep.store import Provenance, ResultsStore, TrialResult

log = logging.getLogger(__name__)


@dataclass
class SweepSummary:
    total: int
    skipped: int
    ran: int
    seconds: float
    store: Path


def soup_cache_path(store_path: Path) -> Path:
    """The embedding cache of AdapterSoup's generators: a side file beside the store."""
    return store_path.with_name(f"{store_path.name}.adaptersoup-embeddings.safetensors")


def soup_selections(ctx: SweepContext, store: ResultsStore) -> dict[str, dict[str, list[str]]]:
    """AdapterSoup's selections for the spec's targets, computed once per sweep (texts, embeddings, one
    mixture) and recorded in the store; generator -> target -> adapters in order. Empty when no
    generator of the spec needs them."""
    gens = ctx.spec.subsets.selection_generators
    if not gens:
        return {}
    from adaptermix.sweep.soup import compute_selections, selection_names

    names = sorted(ctx.pool.names)
    targets = list(ctx.spec.targets) if ctx.spec.targets is not None else names
    cache = soup_cache_path(store.path) if not store.readonly else None
    chosen = compute_selections(ctx.spec.pool_dirs(), targets, gens, ctx.spec.subsets.adaptersoup,
                                data_dir=ctx.spec.data, cache=cache, encode=ctx.sentence_encode)
    store.record_selections({(g, t): s.to_dict() for g, per in chosen.items() for t, s in per.items()})
    for g, per in chosen.items():
        for t, s in per.items():
            log.info("%s %s (%s texts): %s", g, t, s.target_texts, ", ".join(s.adapters))
    return selection_names(chosen)


def plan(ctx: SweepContext, store: ResultsStore, shard_spec: tuple[int, int] | None = None) -> tuple[list[Trial], int]:
    """The trials still to run (this shard, not finished) and how many of the shard were already done."""
    fsd_np = ctx.fsd.double().numpy()
    trials = expand(ctx.spec, ctx.pool.names, fsd_np, soup_selections(ctx, store))
    if shard_spec is not None:
        trials = shard(trials, *shard_spec)
    done = store.finished_keys()
    todo = [t for t in trials if t.key not in done]
    return todo, len(trials) - len(todo)


Backend = Callable[[SweepContext, list[list[Trial]], Callable[[list[TrialResult]], None]], None]


def local_backend(ctx: SweepContext, groups: list[list[Trial]], sink: Callable[[list[TrialResult]], None]) -> None:
    """Evaluate the groups in this process, one after the other."""
    for group in groups:
        sink(evaluate_group(ctx, group))


def run_sweep(
    spec: SweepSpec,
    store_path: str | Path,
    shard_spec: tuple[int, int] | None = None,
    encoder: Encoder | None = None,
    progress: bool = True,
    backend: Backend | None = None,
    sentence_encode: Callable[[list[str]], Any] | None = None,
) -> SweepSummary:
    """Run (or resume) a sweep into the SQLite store at ``store_path``. ``sentence_encode`` replaces the
    packaged MiniLM for AdapterSoup's generators (texts -> [n, d] embeddings; tests pass a small one)."""
    started = time.perf_counter()
    ctx = SweepContext.prepare(spec, encoder)
    ctx.sentence_encode = sentence_encode
    try:
        with ResultsStore(store_path) as store:
            store.check_adapters({n: a.weights_sha256() for n, a in zip(ctx.pool.names, ctx.pool.adapters,
                                                                          strict=True)})
            todo, skipped = plan(ctx, store, shard_spec)
            store.begin_run(Provenance.collect(json.dumps(ctx.spec.model_dump(mode="json"), sort_keys=True),
                                               ctx.encoder.fingerprint, spec.seed))
            groups = group_trials(todo)
            bar = tqdm(total=len(todo), desc="sweep", unit="trial", disable=not progress, smoothing=0.1)

            def sink(results: list[TrialResult]) -> None:
                store.record(results)
                bar.update(len(results))
                bar.set_postfix_str(f"{results[-1].trial.target} k={results[-1].trial.k}")

            (backend or local_backend)(ctx, groups, sink)
            bar.close()
            if spec.subsets.adaptive:
                ran_adaptive, reused = run_adaptive(ctx, store, progress)
                return SweepSummary(len(todo) + skipped + ran_adaptive + reused, skipped + reused,
                                    len(todo) + ran_adaptive, time.perf_counter() - started, Path(store_path))
    finally:
        ctx.close()
    return SweepSummary(len(todo) + skipped, skipped, len(todo), time.perf_counter() - started, Path(store_path))


def run_adaptive(ctx: SweepContext, store: ResultsStore, progress: bool = True) -> tuple[int, int]:
    """Generator ``adaptive``: per target, a budgeted search (:mod:`adaptermix.recommend.search`) whose
    evaluations are recorded as ordinary trials; returns (trials run, trials read back from the store).

    The search learns from the store's other targets as it goes (``prior``), so later targets cost fewer
    wasted evaluations. Runs in this process (the search is sequential by nature)."""
    from adaptermix.recommend.live import StoreEvaluator
    from adaptermix.recommend.search import SearchSpace, search

    sub = ctx.spec.subsets
    names = sorted(ctx.pool.names)
    targets = list(ctx.spec.targets) if ctx.spec.targets is not None else names
    bar = tqdm(total=len(targets) * int(sub.budget or 0), desc="adaptive", unit="mixture", disable=not progress)
    ev = StoreEvaluator(ctx, store)
    for target in targets:
        space = SearchSpace(target, ev.facts, tuple(ctx.spec.rules), sign_change=ev.sign_change, min_k=sub.min_k)
        before = ev.new + ev.reused
        result = search(sub.strategy, space, ev, int(sub.budget or 0), seed=ctx.spec.seed, prior=ev.prior())
        bar.update(ev.new + ev.reused - before)
        best = result.best
        log.info("adaptive %s: best %s = %.4f (single %.4f)", target, best.candidate.describe(), best.metric,
                 result.single)
    bar.close()
    n_eval = len(ctx.spec.evaluations)
    return ev.new * n_eval, ev.reused * n_eval


