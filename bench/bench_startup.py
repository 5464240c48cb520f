"""Start-up of a sweep to its first trial, and per-trial times by evaluation (issue 16's benchmark list).

For a pool of trained adapters (e.g. the demo's: ``adaptermix reproduce configs/demo.yaml --stages train``,
then ``--pool runs/demo/adapters/pfeiffer``) and each precision (fp32, bf16), a *fresh Python process*
(so neither precision profits from the other's warm caches; the order alternates over ``--repeats``):

1. **start-up**: the wall time from the ``run_sweep`` call to the first trial recorded in a new store — a
   sweep of one trial (``--target``'s single adapter, clean, ``--max-eval-examples`` test examples), so
   what is timed is everything a sweep pays before its first result: encoder load (packaged MiniLM from
   the local cache), pool load, the FSD matrix, the store, reading and tokenising the target's evaluation
   rows, building the live model, the first mixture's evaluation and its write. The phases are timed by
   wrapping the runner's own functions (``load_encoder``, ``load_pool``, ``AdapterPool.fsd``, ``eval_rows``,
   ``tokenized_eval_set``, ``LiveModel.build``, ``evaluate_group``); "other" is the rest (store, plan,
   provenance). Python imports come before the call and are reported separately (``import``).
2. **per trial** (``--ks``, default ``1,2``: the target's single adapter and its 4 pairs in a 5-domain
   pool; first process of each precision only): per evaluation of ``--evaluations`` (default clean, fgsm,
   textfooler at the demo's parameters: FGSM epsilon 0.01, TextFooler at most 10 examples and 500
   queries), one more sweep of the target's mixtures with that evaluation alone, reusing the loaded
   encoder; reported: the median of the store's per-trial ``seconds`` (mixing, writing and evaluating one
   mixture) and the whole sweep's wall and process CPU time per trial (CPU time is what an idle machine's
   wall time would be for one thread, when the machine is shared) — the inputs of the study projection in
   the README.

Medians over ``--repeats`` processes per precision. One thread (``--threads``). Usage:
``ADAPTERMIX_DATA=... python bench/bench_startup.py --pool runs/demo/adapters/pfeiffer [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

PHASES = ("import", "load_encoder", "load_pool", "fsd", "eval_rows", "tokenize", "live_model",
          "first_evaluation", "other", "to_first_trial")


def _child(args: argparse.Namespace) -> dict[str, Any]:
    """One precision in this process: start-up phases, then per-trial seconds by evaluation."""
    t_import = time.perf_counter()
    import torch

    import adaptermix.sweep.runner as runner
    from adaptermix.pool import AdapterPool
    from adaptermix.sweep.spec import SubsetSpec, SweepSpec
    from adaptermix.sweep.store import ResultsStore

    torch.set_num_threads(args.threads)
    phases: dict[str, float] = defaultdict(float)
    phases["import"] = time.perf_counter() - t_import

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                phases[name] += time.perf_counter() - t0
        return wrapper

    for owner, name, phase in ((runner, "load_encoder", "load_encoder"), (runner, "load_pool", "load_pool"),
                               (runner, "eval_rows", "eval_rows"), (runner, "tokenized_eval_set", "tokenize"),
                               (runner, "evaluate_group", "first_evaluation"), (AdapterPool, "fsd", "fsd"),
                               (runner.LiveModel, "build", "live_model")):
        setattr(owner, name, timed(phase, getattr(owner, name)))

    dirs = sorted(p for p in Path(args.pool).iterdir() if (p / "adapter.json").is_file())
    pool = {p.name: str(p) for p in dirs}
    target = args.target or dirs[0].name
    first_at: list[float] = []

    def backend(ctx: Any, groups: Any, sink: Callable[[Any], None]) -> None:
        for group in groups:
            sink(runner.evaluate_group(ctx, group))
            if not first_at:
                first_at.extend((time.perf_counter(), time.process_time()))

    spec = SweepSpec(pool=pool, targets=(target,), subsets=SubsetSpec(ks=(1,)),
                     max_eval_examples=args.max_eval_examples, precision=args.precision, evaluations=("clean",))
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        runner.run_sweep(spec, Path(tmp) / "startup.sqlite", progress=False, backend=backend)
        cpu_to_first = [first_at[1] - c0]
        phases["to_first_trial"] = first_at[0] - t0
        named = sum(v for k, v in phases.items() if k not in ("import", "to_first_trial"))
        phases["other"] = phases["to_first_trial"] - named
        encoder = runner.load_encoder(precision=args.precision)
    out: dict[str, Any] = {"startup": dict(phases), "startup_cpu": cpu_to_first[0], "per_trial": {}}
    params = {"fgsm": {"epsilon": 0.01}, "textfooler": {"max_examples": 10, "max_queries": 500}}
    for evaluation in args.evaluations.split(",") if args.ks else []:
        spec = SweepSpec(pool=pool, targets=(target,), subsets=SubsetSpec(ks=tuple(args.ks)),
                         max_eval_examples=args.max_eval_examples, precision=args.precision,
                         evaluations=(evaluation,),
                         evaluation_params={evaluation: params[evaluation]} if evaluation in params else {})
        with tempfile.TemporaryDirectory() as tmp:
            store = Path(tmp) / "trials.sqlite"
            w0, c0 = time.perf_counter(), time.process_time()
            runner.run_sweep(spec, store, encoder=encoder, progress=False)
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            with ResultsStore(store, readonly=True) as reader:
                secs = [float(r["seconds"]) for r in reader.rows("trials")]
        out["per_trial"][evaluation] = {"median": statistics.median(secs), "n": len(secs),
                                        "wall_mean": wall / len(secs), "cpu_mean": cpu / len(secs)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", required=True, help="folder holding one adapter folder per domain")
    ap.add_argument("--target", default=None, help="target domain (default: the first adapter folder)")
    ap.add_argument("--max-eval-examples", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ks", default="1,2", help="mixture sizes for the per-trial times ('' = skip)")
    ap.add_argument("--evaluations", default="clean,fgsm,textfooler")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="bf16", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.ks = [int(k) for k in args.ks.split(",") if k]
    if args.child:
        print(json.dumps(_child(args)))
        return
    precisions = args.precisions.split(",")
    results: dict[str, list[dict[str, Any]]] = {p: [] for p in precisions}
    for rep in range(args.repeats):
        for p in precisions if rep % 2 == 0 else precisions[::-1]:
            cmd = [sys.executable, __file__, "--child", "--precision", p, "--pool", args.pool,
                   "--max-eval-examples", str(args.max_eval_examples), "--threads", str(args.threads),
                   "--ks", ",".join(map(str, args.ks)) if rep == 0 else "", "--evaluations", args.evaluations]
            if args.target:
                cmd += ["--target", args.target]
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            results[p].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"  run {rep + 1} {p}: to first trial {results[p][-1]['startup']['to_first_trial']:.2f} s",
                  file=sys.stderr)
    print(f"start-up to the first trial (medians of {args.repeats} fresh processes, {args.threads} thread(s), "
          f"{args.max_eval_examples} test examples), seconds:")
    print("  phase              " + "".join(f"{p:>10}" for p in precisions))
    for phase in PHASES:
        vals = [statistics.median(r["startup"][phase] for r in results[p]) for p in precisions]
        print(f"  {phase:<18} " + "".join(f"{v:10.3f}" for v in vals))
    vals = [statistics.median(r["startup_cpu"] for r in results[p]) for p in precisions]
    print("  to_first_trial CPU " + "".join(f"{v:10.3f}" for v in vals) + "  (process CPU time: the same on an idle machine)")
    if args.ks:
        print(f"per trial, seconds (the target's mixtures of k in {args.ks}, first process; median of the "
              "store's per-trial seconds, and whole sweep wall / CPU time per trial):")
        for p in precisions:
            for e, v in results[p][0]["per_trial"].items():
                print(f"  {p} {e:<11} median {v['median']:.3f}, wall {v['wall_mean']:.3f}, CPU {v['cpu_mean']:.3f} "
                      f"(n={v['n']})")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
