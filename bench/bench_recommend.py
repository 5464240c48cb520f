"""Benchmark: budgeted mixture search against the exhaustive sweep, every strategy side by side.

Reads an *exhaustive* results store (every subset containing each target, e.g. the demo's ``generator:
all``) and its pool's ``fsd.json`` (+ the study's ``analysis/similarity.json`` when present). Every strategy
of ``adaptermix.recommend.search`` then searches each target with a budget of a fraction of the exhaustive
sweep's evaluations, looking the results up in the store (no model runs: the numbers are exactly those the
search would have measured). Reported per strategy: the mean and worst gap to the exhaustive best (points),
how many (target, seed) searches land within 1 point, the gain over the single adapter, and evaluations.

Two questions, both printed: ``min_k 1`` (the best mixture, the single adapter allowed: in-domain it is
usually the winner) and ``min_k 2`` (the best mixture that really mixes). ``cold``: each search starts from
nothing; ``warm``: the model strategy also learns from the *other* targets' mixtures (leave one target out).

    python bench/bench_recommend.py results/demo/pfeiffer [--fraction 0.1] [--budget B] [--seeds 5]
        [--evaluation clean] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from adaptermix.recommend.features import read_measured, read_pool_facts
from adaptermix.recommend.search import budget_for, compare_strategies, summarise

STRATEGIES = ("model", "greedy_fsd", "adaptersoup", "evolve", "random")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", help="a study's method folder (results.sqlite + fsd.json) of an exhaustive sweep")
    parser.add_argument("--evaluation", default="clean")
    parser.add_argument("--fraction", type=float, default=0.1, help="budget as a fraction of the exhaustive sweep")
    parser.add_argument("--budget", type=int, help="absolute budget (overrides --fraction)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", help="write every comparison here")
    args = parser.parse_args()

    folder = Path(args.store)
    measured = [m for m in read_measured(folder / "results.sqlite", args.evaluation, ["average"])
                if not m.candidate.rule_params]
    facts = read_pool_facts(folder, sorted({m.candidate.target for m in measured}))
    strategies = [s for s in STRATEGIES if s != "adaptersoup" or facts.similarity is not None]
    n_others = len(facts.names) - 1
    out = {}
    print(f"{folder}: {len(facts.names)} adapters, {len(measured)} measured mixtures ({args.evaluation})")
    for min_k in (1, 2):
        exhaustive = 2 ** n_others - (1 if min_k == 2 else 0)
        budget = args.budget or max(budget_for(args.fraction, exhaustive), 2)
        for warm in (False, True):
            label = (f"min_k {min_k}, {'warm' if warm else 'cold'}: budget {budget} evaluations (the single's "
                     f"included) vs {exhaustive} mixtures in the exhaustive sweep")
            cs = compare_strategies(measured, facts, budget, strategies if not warm else ["model"],
                                    seeds=range(args.seeds), use_prior=warm, min_k=min_k)
            rows = summarise(cs)
            out[label] = {"rows": rows, "comparisons": [c.__dict__ | {"gap_points": c.gap_points} for c in cs]}
            print(f"\n{label}")
            print(f"  {'strategy':12s} {'mean gap':>9s} {'worst':>7s} {'within 1 pt':>12s} {'vs single':>10s} {'evals':>6s}")
            for r in rows:
                print(f"  {r['strategy']:12s} {r['mean_gap_points']:9.2f} {r['worst_gap_points']:7.2f} "
                      f"{r['within_1_point']:>12s} {r['mean_gain_over_single_points']:+10.2f} {r['evaluations']:6.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
