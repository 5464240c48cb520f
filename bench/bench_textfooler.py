"""Benchmark: our TextFooler (batched + cached) vs the same recipe run one input at a time, uncached.

Victim: the packaged all-MiniLM-L6-v2 sentence embeddings + a logistic-regression head fitted on a few
hundred SST-2 training sentences (a stand-in for the adapter victim; only the timing matters here).
Both runs attack the same SST-2 test sentences with the same resources, alternating example by example
so that machine load affects them alike; we report per-example medians and the speed ratio.

TextAttack is not compared: it installs only with ``transformers<5`` (its ``flair`` dependency), which
conflicts with the project's pins (see docs/textfooler.md).

Usage: ``python bench/bench_textfooler.py [--examples 15] [--train 200] [--max-queries 2000]``
(needs ``$ADAPTERMIX_DATA``; builds the counter-fitted vectors into the cache on first use).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from adaptermix.attacks.resources import ResourceConfig, ResourceContext
from adaptermix.attacks.textfooler import TextFoolerConfig, build_resources, textfooler
from adaptermix.attacks.victim import CachedVictim
from adaptermix.data.config import DataConfig
from adaptermix.data.sources import load_task


class EmbeddingLogRegVictim:
    """MiniLM sentence embeddings -> logistic regression (single-sentence task)."""

    is_pair = False

    def __init__(self, encode, train) -> None:
        from sklearn.linear_model import LogisticRegression

        self.encode = encode
        self.head = LogisticRegression(max_iter=1000).fit(
            encode([e.text for e in train]), [e.label for e in train]
        )
        self.num_labels = len(self.head.classes_)

    def predict_proba(self, batch):
        return self.head.predict_proba(self.encode([t for t, _ in batch]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=15)
    ap.add_argument("--train", type=int, default=200)
    ap.add_argument("--max-queries", type=int, default=2000)
    args = ap.parse_args()

    t0 = time.perf_counter()
    ctx = ResourceContext(ResourceConfig())
    cfg = TextFoolerConfig(max_queries=args.max_queries)
    resources = build_resources(cfg, ctx)
    t_res = time.perf_counter() - t0
    data = load_task(DataConfig(name="sst2", max_train=args.train, max_test=200), ("train", "test"))
    victim = EmbeddingLogRegVictim(ctx.encoder(), data.split("train"))
    test = data.split("test")
    clean = victim.predict_proba([(e.text, None) for e in test]).argmax(1)
    chosen = [e for e, p in zip(test, clean, strict=True) if p == e.label][: args.examples]
    print(
        f"resources ready in {t_res:.1f}s; victim clean accuracy {np.mean(clean == [e.label for e in test]):.3f} "
        f"on {len(test)} test sentences; attacking {len(chosen)} correctly classified ones"
    )

    fast = textfooler(cfg, resources)
    slow = textfooler(cfg.model_copy(update={"batch": False, "cache": False}), resources)
    fast_victim, slow_victim = CachedVictim(victim, "bench"), CachedVictim(victim, "bench", cache=False)
    times: dict[str, list[float]] = {"ours": [], "baseline": []}
    reports = {"ours": [], "baseline": []}
    for i, example in enumerate(chosen):
        for name, recipe, v in (("ours", fast, fast_victim), ("baseline", slow, slow_victim)):
            start = time.perf_counter()
            report = recipe.run([example], v)
            times[name].append(time.perf_counter() - start)
            reports[name].append(report.outcomes[0])
        o = reports["ours"][-1]
        print(
            f"[{i + 1}/{len(chosen)}] {o.status:7s} queries {o.queries:4d}  ours {times['ours'][-1]:6.2f}s  "
            f"baseline {times['baseline'][-1]:6.2f}s"
        )

    same = sum(
        a.adversarial == b.adversarial for a, b in zip(reports["ours"], reports["baseline"], strict=True)
    )
    med = {k: statistics.median(v) for k, v in times.items()}
    tot = {k: sum(v) for k, v in times.items()}
    ours = reports["ours"]
    success = [o for o in ours if o.status == "success"]
    print("\n== TextFooler benchmark (same examples, same resources, alternating) ==")
    print(
        f"examples: {len(chosen)}; success {len(success)}, failed {len(ours) - len(success)}; "
        f"mean queries {np.mean([o.queries for o in ours]):.1f}; "
        f"mean model calls (ours, cached) {np.mean([o.model_calls for o in ours]):.1f}; "
        f"mean % perturbed (successes) {np.mean([o.pct_perturbed for o in success]) if success else float('nan'):.1f}"
    )
    print(
        f"median seconds per example: ours {med['ours']:.2f}, unbatched+uncached {med['baseline']:.2f}; "
        f"ratio of medians {med['baseline'] / med['ours']:.1f}x"
    )
    print(
        f"total seconds: ours {tot['ours']:.1f}, unbatched+uncached {tot['baseline']:.1f}; "
        f"ratio {tot['baseline'] / tot['ours']:.1f}x"
    )
    print(
        f"victim calls: ours {fast_victim.stats.batches}, baseline {slow_victim.stats.batches}; "
        f"identical adversarial texts: {same}/{len(chosen)}"
    )


if __name__ == "__main__":
    main()
