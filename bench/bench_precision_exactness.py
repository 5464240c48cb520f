"""Exactness of the bf16 fast path (issue 16): does bf16 change the science? Real encoder, real adapters.

For a pool of trained adapters (e.g. the demo's: ``adaptermix reproduce configs/demo.yaml --stages train``
then ``--pool runs/demo/adapters/pfeiffer``), every mixture of every target (all subsets containing it,
the demo sweep's ``generator: all``, rule ``average``) is written into two live models — the packaged
encoder stored in fp32 and in bf16 — and evaluated on the same capped test examples, clean and under FGSM.
Printed: prediction agreement over all evaluated examples (goal >= 99.5 %), the worst mixture's change of
its headline metric in points (goal: <= max(1 point, one example's worth)), the same under FGSM (goal:
within 1 point), and the mean. Worst cases are reported, not only means.

Clean outputs go through the sweep's own path (each target's cached frozen prefix,
:mod:`adaptermix.backbone.prefix`), FGSM through the sweep's full forwards, so this measures what a bf16
sweep stores. From the two sets of per-mixture metrics, the statistics ``adaptermix stats`` derives
(:func:`adaptermix.sweep.stats.compute_stats`: Table 1's drops from k = 1 to k = N and the FSD-metric
correlations, per target and pooled) are computed for fp32 and for bf16 and compared *at the precision
``stats`` prints* (4 decimals for values, 3 significant digits for p-values): the number of printed cells
that differ and the largest difference (drop in points, r) are reported, with the worst cell.

    ADAPTERMIX_DATA=... python bench/bench_precision_exactness.py --pool runs/demo/adapters/pfeiffer
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adaptermix.attacks.fgsm import fgsm_outputs
from adaptermix.attacks.model_victim import ModelVictim
from adaptermix.backbone import load_encoder
from adaptermix.merging import merge_flat
from adaptermix.sweep.runner import SweepContext, mixture_stats
from adaptermix.sweep.spec import SweepSpec
from adaptermix.sweep.stats import _cell, compute_stats
from adaptermix.training.evaluate import metrics_from_outputs, predict


def _stats_row(evaluation: str, target: str, subset: list[str], metric_name: str, metric: float,
               stats: Any, args: argparse.Namespace) -> dict[str, Any]:
    """One population trial as ``compute_stats`` reads it from a store (the fields it uses)."""
    return {"evaluation": evaluation, "eval_params_json": json.dumps({"epsilon": args.epsilon} if evaluation == "fgsm"
                                                                     else {}),
            "rule": "average", "rule_params_json": "{}", "split": "test",
            "max_eval_examples": args.max_eval_examples, "seed": 0, "max_length": None, "tag": "",
            "target": target, "subset_json": json.dumps(subset), "k": len(subset), "metric_name": metric_name,
            "metric": metric, "mean_pairwise_fsd": stats.mean_pairwise_fsd if len(subset) > 1 else None,
            "target_sign_change": None if math.isnan(stats.flipped) else stats.flipped}


def _compare_stats(rows: dict[str, list[dict[str, Any]]]) -> None:
    """Table 1 drops and FSD correlations from the fp32 and the bf16 metrics, compared as ``stats`` prints."""
    tables = {p: compute_stats(r, selections={}) for p, r in rows.items()}
    for name, fields_ in (("drops", ("metric_k1", "metric_kmax", "drop", "abs_drop", "rel_drop_pct")),
                          ("correlations", ("pearson_r", "pearson_p", "spearman_r", "spearman_p", "rm_r", "rm_p"))):
        a, b = (getattr(tables[p], name) for p in ("fp32", "bf16"))
        cells = differ = 0
        worst: dict[str, tuple[float, str]] = {}
        for ra, rb in zip(a, b, strict=True):
            ident = " ".join(str(getattr(ra, f)) for f in ("setting", "target") + (
                ("fsd_stat", "k_range") if name == "correlations" else ()))
            for f in fields_:
                va, vb = getattr(ra, f), getattr(rb, f)
                cells += 1
                if _cell(f, va) != _cell(f, vb):
                    differ += 1
                d = abs(va - vb) if not (math.isnan(va) or math.isnan(vb)) else 0.0
                d = d * 100 if f in ("metric_k1", "metric_kmax", "drop", "abs_drop") else d
                if d > worst.get(f, (-1.0, ""))[0]:
                    worst[f] = (d, f"{ident}: {_cell(f, va)} vs {_cell(f, vb)}")
        print(f"  stats {name}: {differ} of {cells} printed cells differ (fp32 vs bf16); largest change per column:")
        for f, (d, where) in worst.items():
            unit = " points" if f in ("metric_k1", "metric_kmax", "drop", "abs_drop") else ""
            print(f"    {f}: {d:.4g}{unit} [{where}]")
    headline = [r for r in tables["fp32"].drops if r.target == "*"]
    for ra in headline:
        rb = next(r for r in tables["bf16"].drops if r.setting == ra.setting and r.target == "*")
        print(f"  Table 1 headline ({ra.setting}): mean drop fp32 {100 * ra.drop:.2f} vs bf16 "
              f"{100 * rb.drop:.2f} points")
    for ra in tables["fp32"].correlations:
        if ra.target == "*" and ra.fsd_stat == "mean_pairwise_fsd" and ra.k_range == "k>=2":
            rb = next(r for r in tables["bf16"].correlations if (r.setting, r.target, r.fsd_stat, r.k_range)
                      == (ra.setting, ra.target, ra.fsd_stat, ra.k_range))
            print(f"  FSD-metric correlation ({ra.setting}, pooled, k>=2): Pearson r fp32 {ra.pearson_r:.4f} "
                  f"vs bf16 {rb.pearson_r:.4f}; within-target r {ra.rm_r:.4f} vs {rb.rm_r:.4f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", required=True, help="folder holding one adapter folder per domain")
    ap.add_argument("--max-eval-examples", type=int, default=100)
    ap.add_argument("--epsilon", type=float, default=0.01)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-fgsm", action="store_true")
    ap.add_argument("--targets", default=None, help="comma-separated targets (default: every adapter of the pool)")
    ap.add_argument("--dump", default=None, help="write this run's per-mixture results to a JSON file")
    ap.add_argument("--merge", nargs="+", default=None,
                    help="print the report of several --dump files (e.g. one process per target) instead")
    args = ap.parse_args()
    if args.merge:
        parts = [json.loads(Path(f).read_text()) for f in args.merge]
        _report({k: [x for part in parts for x in part[k]] for k in parts[0]})
        return
    torch.set_num_threads(args.threads)
    dirs = sorted(p for p in Path(args.pool).iterdir() if (p / "adapter.json").is_file())
    spec = SweepSpec(pool={p.name: str(p) for p in dirs}, max_eval_examples=args.max_eval_examples,
                     batch_size=args.batch_size)
    ctxs = {p: SweepContext.prepare(spec.model_copy(update={"precision": p}), load_encoder(precision=p))
            for p in ("fp32", "bf16")}
    names = ctxs["fp32"].pool.names
    evals = ["clean"] + ([] if args.no_fgsm else ["fgsm"])
    seconds = {"fp32": 0.0, "bf16": 0.0}
    # one record per (mixture, evaluation): what the report aggregates (and --dump writes)
    records: list[dict[str, Any]] = []
    for target in (args.targets.split(",") if args.targets else names):
        others = [n for n in names if n != target]
        tpos = names.index(target)
        for k in range(len(names)):
            for rest in itertools.combinations(others, k):
                subset = sorted((target, *rest))
                idx = [names.index(n) for n in subset]
                out: dict[str, dict[str, np.ndarray]] = {}
                for p, ctx in ctxs.items():
                    t0 = time.perf_counter()
                    vec = merge_flat("average", ctx.pool.flat, idx, layout=ctx.pool.stacked.layout, keys=names,
                                     fsd=ctx.fsd)
                    ctx.live.write(vec)
                    ctx.live.use_head(target, ctx.pool.adapters[tpos])
                    es = ctx.eval_set(target)
                    out[p] = {"clean": predict(ctx.live.model, es.tokens, args.batch_size, es.prefix)}
                    if "fgsm" in evals:
                        victim = ModelVictim(ctx.live.model, es.max_length, args.batch_size, es.info.is_pair,
                                             es.info.problem == "regression")
                        out[p]["fgsm"] = fgsm_outputs(victim, es.tokens, args.epsilon, args.batch_size)
                    seconds[p] += time.perf_counter() - t0
                es = ctxs["fp32"].eval_set(target)
                n = len(es.examples)
                stats = mixture_stats(ctxs["fp32"], idx, tpos, vec.to(torch.float32), False)
                for e in evals:
                    a, b = out["fp32"][e], out["bf16"][e]
                    regression = es.info.problem == "regression"
                    ma = metrics_from_outputs(a, es.tokens, es.info)[es.info.metric]
                    mb = metrics_from_outputs(b, es.tokens, es.info)[es.info.metric]
                    records.append({
                        "evaluation": e, "target": target, "subset": subset, "metric_name": es.info.metric,
                        "fp32": ma, "bf16": mb, "n": n,
                        "agree": None if regression else int((a.argmax(1) == b.argmax(1)).sum()),
                        "fp32_row": _stats_row(e, target, subset, es.info.metric, ma, stats, args),
                        "bf16_row": _stats_row(e, target, subset, es.info.metric, mb, stats, args),
                    })
    for ctx in ctxs.values():
        ctx.close()
    result = {"records": records, "seconds": [seconds],
              "setup": [{"max_eval_examples": args.max_eval_examples, "threads": torch.get_num_threads()}]}
    if args.dump:
        Path(args.dump).write_text(json.dumps(result))
    _report(result)


def _report(result: dict[str, list[Any]]) -> None:
    """The printed report from the per-mixture records of one or several runs."""
    records = result["records"]
    evals = list(dict.fromkeys(r["evaluation"] for r in records))
    mixtures = {(r["target"], tuple(r["subset"])) for r in records}
    setup = result["setup"][0]
    print(f"{len(mixtures)} mixtures ({len({t for t, _ in mixtures})} targets x all subsets, rule average), "
          f"{setup['max_eval_examples']} test examples per target, threads {setup['threads']}")
    for e in evals:
        mine = [r for r in records if r["evaluation"] == e]
        hit = sum(r["agree"] for r in mine if r["agree"] is not None)
        tot = sum(r["n"] for r in mine if r["agree"] is not None)
        deltas = [abs(r["fp32"] - r["bf16"]) * 100 for r in mine]
        over = sum(d > max(1.0, 100.0 / r["n"]) + 1e-9 for d, r in zip(deltas, mine, strict=True))
        w = int(np.argmax(deltas))
        r = mine[w]
        where = (f"{r['target']} <- {'+'.join(r['subset'])} ({r['metric_name']} {r['fp32']:.4f} vs {r['bf16']:.4f}, "
                 f"n={r['n']})")
        rate = f"{100 * hit / tot:.2f} % ({tot - hit} of {tot} differ)" if tot else "n/a (regression)"
        print(f"  {e}: predictions agree {rate}; metric change per mixture: worst {deltas[w]:.2f} points "
              f"[{where}], mean {np.mean(deltas):.3f}; mixtures over max(1 point, one example): {over}")
    _compare_stats({p: [r[f"{p}_row"] for r in records] for p in ("fp32", "bf16")})
    secs = {p: sum(s[p] for s in result["seconds"]) for p in ("fp32", "bf16")}
    print(f"  evaluation time: fp32 {secs['fp32']:.1f} s, bf16 {secs['bf16']:.1f} s "
          f"({secs['fp32'] / max(secs['bf16'], 1e-9):.2f}x)")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
