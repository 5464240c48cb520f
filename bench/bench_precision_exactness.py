"""Exactness of the bf16 fast path (issue 16): does bf16 change the science? Real encoder, real adapters.

For a pool of trained adapters (e.g. the demo's: ``adaptermix reproduce configs/demo.yaml --stages train``
then ``--pool runs/demo/adapters/pfeiffer``), every mixture of every target (all subsets containing it,
the demo sweep's ``generator: all``, rule ``average``) is written into two live models — the packaged
encoder stored in fp32 and in bf16 — and evaluated on the same capped test examples, clean and under FGSM.
Printed: prediction agreement over all evaluated examples (goal >= 99.5 %), the worst mixture's change of
its headline metric in points (goal: <= max(1 point, one example's worth)), the same under FGSM (goal:
within 1 point), and the mean. Worst cases are reported, not only means.

    ADAPTERMIX_DATA=... python bench/bench_precision_exactness.py --pool runs/demo/adapters/pfeiffer
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from pathlib import Path

import numpy as np
import torch

from adaptermix.attacks.fgsm import fgsm_outputs
from adaptermix.attacks.model_victim import ModelVictim
from adaptermix.backbone import load_encoder
from adaptermix.merging import merge_flat
from adaptermix.sweep.runner import SweepContext
from adaptermix.sweep.spec import SweepSpec
from adaptermix.training.evaluate import metrics_from_outputs, predict


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", required=True, help="folder holding one adapter folder per domain")
    ap.add_argument("--max-eval-examples", type=int, default=100)
    ap.add_argument("--epsilon", type=float, default=0.01)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-fgsm", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dirs = sorted(p for p in Path(args.pool).iterdir() if (p / "adapter.json").is_file())
    spec = SweepSpec(pool={p.name: str(p) for p in dirs}, max_eval_examples=args.max_eval_examples,
                     batch_size=args.batch_size)
    ctxs = {p: SweepContext.prepare(spec.model_copy(update={"precision": p}), load_encoder(precision=p))
            for p in ("fp32", "bf16")}
    names = ctxs["fp32"].pool.names
    evals = ["clean"] + ([] if args.no_fgsm else ["fgsm"])
    agree = {e: [0, 0] for e in evals}
    worst: dict[str, tuple[float, str]] = {e: (-1.0, "") for e in evals}
    deltas: dict[str, list[float]] = {e: [] for e in evals}
    over_budget: dict[str, int] = {e: 0 for e in evals}
    seconds = {"fp32": 0.0, "bf16": 0.0}
    n_mix = 0
    for target in names:
        others = [n for n in names if n != target]
        tpos = names.index(target)
        for k in range(len(names)):
            for rest in itertools.combinations(others, k):
                subset = sorted((target, *rest))
                idx = [names.index(n) for n in subset]
                n_mix += 1
                out: dict[str, dict[str, np.ndarray]] = {}
                for p, ctx in ctxs.items():
                    t0 = time.perf_counter()
                    vec = merge_flat("average", ctx.pool.flat, idx, layout=ctx.pool.stacked.layout, keys=names,
                                     fsd=ctx.fsd)
                    ctx.live.write(vec)
                    ctx.live.use_head(target, ctx.pool.adapters[tpos])
                    es = ctx.eval_set(target)
                    out[p] = {"clean": predict(ctx.live.model, es.tokens, args.batch_size)}
                    if "fgsm" in evals:
                        victim = ModelVictim(ctx.live.model, es.max_length, args.batch_size, es.info.is_pair,
                                             es.info.problem == "regression")
                        out[p]["fgsm"] = fgsm_outputs(victim, es.tokens, args.epsilon, args.batch_size)
                    seconds[p] += time.perf_counter() - t0
                es = ctxs["fp32"].eval_set(target)
                n = len(es.examples)
                for e in evals:
                    a, b = out["fp32"][e], out["bf16"][e]
                    if es.info.problem != "regression":
                        agree[e][0] += int((a.argmax(1) == b.argmax(1)).sum())
                        agree[e][1] += n
                    ma = metrics_from_outputs(a, es.tokens, es.info)[es.info.metric]
                    mb = metrics_from_outputs(b, es.tokens, es.info)[es.info.metric]
                    d = abs(ma - mb) * 100
                    deltas[e].append(d)
                    if d > max(1.0, 100.0 / n) + 1e-9:
                        over_budget[e] += 1
                    if d > worst[e][0]:
                        worst[e] = (d, f"{target} <- {'+'.join(subset)} ({es.info.metric} {ma:.4f} vs {mb:.4f}, n={n})")
    for ctx in ctxs.values():
        ctx.close()
    print(f"{n_mix} mixtures ({len(names)} targets x all subsets, rule average), "
          f"{args.max_eval_examples} test examples per target, threads {torch.get_num_threads()}")
    for e in evals:
        hit, tot = agree[e]
        rate = f"{100 * hit / tot:.2f} % ({tot - hit} of {tot} differ)" if tot else "n/a (regression)"
        print(f"  {e}: predictions agree {rate}; metric change per mixture: worst {worst[e][0]:.2f} points "
              f"[{worst[e][1]}], mean {np.mean(deltas[e]):.3f}; mixtures over max(1 point, one example): "
              f"{over_budget[e]}")
    print(f"  evaluation time: fp32 {seconds['fp32']:.1f} s, bf16 {seconds['bf16']:.1f} s "
          f"({seconds['fp32'] / max(seconds['bf16'], 1e-9):.2f}x)")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
