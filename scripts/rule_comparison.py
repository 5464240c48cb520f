"""Issue #18's table: every rule's all-domain mixture (k = N) against each domain's own adapter.

    python scripts/rule_comparison.py results/cpu-all-domain/pfeiffer/results.sqlite \
        results/cpu-study/pfeiffer/results.sqlite [--exclude mrpc,rte] [--json out.json]

A thin wrapper over :func:`adaptermix.sweep.stats.rule_comparison` (the ``rules`` table of ``adaptermix
stats`` and the report's "Which rule?" section), kept to reproduce ``results/cpu-all-domain/rules-*.txt/.json``:
the k = N trials come from the first store, the single adapters (k = 1, rule average, untagged, same
evaluation/split/caps/seed) from the second (the study's store) where the first has none. Prints, per rule:
the mean drop in points (single - mixture; positive = the mixture is worse), the mean normalised metric
(mixture / single, %), the worst target and the storage per domain. Only clean trials are compared.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from adaptermix.sweep.stats import ALL, rule_comparison
from adaptermix.sweep.store import ResultsStore


def _rows(path: str) -> list[dict]:
    with ResultsStore(path, readonly=True) as s:
        return [r for r in s.rows() if r["evaluation"] == "clean"]


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("store")
    p.add_argument("singles")
    p.add_argument("--exclude", default="", help="targets left out (comma-separated), e.g. flagged ones")
    p.add_argument("--json")
    args = p.parse_args()
    exclude = sorted(t for t in args.exclude.split(",") if t)
    table = rule_comparison(_rows(args.store), _rows(args.singles), exclude=(), exclude_targets=exclude)
    rows = []
    for avg in (r for r in table if r.target == ALL):
        per = [r for r in table if r.setting == avg.setting and r.target != ALL]
        worst = max(per, key=lambda r: r.drop_pts)
        rows.append({"rule": avg.rule, "targets": avg.n, "mean_drop_points": round(avg.drop_pts, 2),
                     "worst": f"{worst.target} {worst.drop_pts:.1f}", "normalised_pct": round(avg.pct_of_single, 1),
                     "per_domain_storage": avg.storage})
    rows.sort(key=lambda r: r["mean_drop_points"])
    n = max(r.k or 0 for r in table)
    print(f"k = {n} (all domains), {rows[0]['targets']} targets"
          + (f", excluding {', '.join(exclude)}" if exclude else ""))
    print(f"{'rule':52s} {'mean drop (pts)':>15s} {'normalised %':>12s}  worst target (pts)")
    for r in rows:
        print(f"{r['rule']:52s} {r['mean_drop_points']:15.2f} {r['normalised_pct']:12.1f}  {r['worst']}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
