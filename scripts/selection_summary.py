"""Which selection wins at equal l, on MATCHED targets: AdapterSoup vs greedy min-FSD vs random selection.

    python scripts/selection_summary.py STATS_DIR/greedy.csv

Reads the per-target rows of ``adaptermix stats``'s ``greedy.csv`` (Fig. 7's table). A selection of
AdapterSoup can stop before l (fewer domains pass its threshold), so its mean over targets at l is not
comparable with greedy's mean over all targets; here every comparison at l uses only the targets whose
AdapterSoup selection reaches l, with greedy min-FSD and random selection (the mean of every evaluated
mixture of size l with the target: the exact expected value of a uniform random pick when the store holds
all of them) on those same targets. Differences are in points (x 100), positive = AdapterSoup better.
"""

from __future__ import annotations

import csv
import math
import statistics
import sys


def _f(row: dict[str, str], key: str) -> float:
    return float(row[key]) if row.get(key) not in (None, "", "nan") else math.nan


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__.splitlines()[2].strip())
    rows = [r for r in csv.DictReader(open(sys.argv[1], encoding="utf-8")) if r["target"] != "*" and int(r["l"]) >= 2]
    for soup in ("soup_similarity", "soup_cluster"):
        print(f"{soup}: l, targets, AdapterSoup - greedy min-FSD, AdapterSoup - random, greedy - random "
              "(points), AdapterSoup better / worse than greedy")
        every: list[dict[str, str]] = []
        for size in sorted({int(r["l"]) for r in rows}):
            m = [r for r in rows if int(r["l"]) == size and not math.isnan(_f(r, soup))]
            if not m:
                continue
            every += m
            _line(f"  l={size}", m, soup)
        if every:
            _line("  all l >= 2", every, soup)


def _line(label: str, m: list[dict[str, str]], soup: str) -> None:
    def mean(a: str, b: str) -> float:
        return statistics.mean(100 * (_f(r, a) - _f(r, b)) for r in m)

    better = sum(_f(r, soup) > _f(r, "greedy_min") for r in m)
    worse = sum(_f(r, soup) < _f(r, "greedy_min") for r in m)
    print(f"{label:12s} n={len(m):3d}  {mean(soup, 'greedy_min'):+6.2f}  {mean(soup, 'random'):+6.2f}  "
          f"{mean('greedy_min', 'random'):+6.2f}   {better} / {worse}")


if __name__ == "__main__":
    main()
