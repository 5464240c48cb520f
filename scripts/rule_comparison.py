"""Issue #18's table: every rule's all-domain mixture (k = N) against each domain's own adapter.

    python scripts/rule_comparison.py runs/cpu-all-domain/pfeiffer/results.sqlite \
        runs/cpu-study/pfeiffer/results.sqlite [--exclude mrpc,rte] [--json out.json]

Reads the k = N trials of the first store (one per target and rule) and the single adapters' clean metric
(k = 1, rule average, untagged) of the second (the study's store: same test examples, caps and seed).
Prints, per rule: the mean drop in points (single - mixture; positive = the mixture is worse), the worst
target, the mean normalised metric (mixture / single, %), and the storage per domain (static rules: one
shared adapter; masked rules: 1 bit per parameter + one scale per domain).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from adaptermix.sweep.store import ResultsStore

MASKED = {"emr", "tall_mask"}


def _rows(path: str) -> list[dict]:
    with ResultsStore(path, readonly=True) as s:
        return [{**r, "trial": json.loads(r["trial_json"])} for r in s.rows()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("store")
    p.add_argument("singles")
    p.add_argument("--exclude", default="", help="targets left out (comma-separated), e.g. flagged ones")
    p.add_argument("--json")
    args = p.parse_args()
    exclude = {t for t in args.exclude.split(",") if t}
    single = {r["target"]: r["metric"] for r in _rows(args.singles)
              if r["k"] == 1 and r["rule"] == "average" and r["tag"] == "" and r["evaluation"] == "clean"}
    mixes = [r for r in _rows(args.store) if r["evaluation"] == "clean" and r["target"] not in exclude]
    n = max(r["k"] for r in mixes)
    by_rule: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
    for r in mixes:
        if r["k"] == n and r["target"] in single:
            label = r["rule"] + (json.dumps(r["trial"]["rule_params"], sort_keys=True) if r["trial"]["rule_params"] else "")
            by_rule[label].append((r["target"], r["metric"], single[r["target"]]))
    rows = []
    for label, vals in by_rule.items():
        drops = [(s - m) * 100 for _, m, s in vals]
        norm = [m / s * 100 for _, m, s in vals if s > 0]
        worst = max(vals, key=lambda v: v[2] - v[1])
        rows.append({"rule": label, "targets": len(vals), "mean_drop_points": round(sum(drops) / len(drops), 2),
                     "worst": f"{worst[0]} {(worst[2] - worst[1]) * 100:.1f}",
                     "normalised_pct": round(sum(norm) / len(norm), 1),
                     "per_domain_storage": "1 bit/param + 1 scalar" if label.split("{")[0] in MASKED else "none (one shared adapter)"})
    rows.sort(key=lambda r: r["mean_drop_points"])
    print(f"k = {n} (all domains), {len(next(iter(by_rule.values())))} targets"
          + (f", excluding {', '.join(sorted(exclude))}" if exclude else ""))
    print(f"{'rule':52s} {'mean drop (pts)':>15s} {'normalised %':>12s}  worst target (pts)")
    for r in rows:
        print(f"{r['rule']:52s} {r['mean_drop_points']:15.2f} {r['normalised_pct']:12.1f}  {r['worst']}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
