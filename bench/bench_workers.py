"""Training throughput: one process using every thread vs N single-threaded worker processes.

Why: ``adaptermix adamix experiment --workers N`` splits the grid over N processes with 1/N of the torch
threads each. Whether that pays depends on how well one training step scales over threads; this bench
measures it directly on the packaged MiniLM with a Houlsby adapter (bottleneck 64), batch ``--batch`` x
``--length`` tokens, full training steps (forward, loss, backward, AdamW).

Each round runs both layouts, side by side in time, on the same machine:

- ``1 x T``: one process with T = ``--threads`` (default: torch's default, the core count) threads does
  N x ``--steps`` steps;
- ``N x 1``: N = ``--workers`` processes with one thread each do ``--steps`` steps each, started
  together behind a barrier (model loading is outside the timed window in both layouts).

Throughput = steps / wall seconds of the timed window; the medians over ``--rounds`` and their ratio are
printed. The machine is shared and noisy: compare the ratio, not the absolute numbers.

    .venv/bin/python bench/bench_workers.py [--rounds 3] [--steps 10] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import time
from typing import Any


def _worker(threads: int, steps: int, batch: int, length: int, barrier: Any, out: Any) -> None:
    import torch

    from adaptermix.artefacts.artefact import new_model
    from adaptermix.backbone.loading import load_encoder
    from adaptermix.data.schema import TaskInfo
    from adaptermix.methods import MethodConfig
    from adaptermix.model import HeadConfig
    from adaptermix.training.loop import step_loss

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    encoder = load_encoder("sentence-transformers/all-MiniLM-L6-v2")
    info = TaskInfo(
        name="bench", task="single", problem="classification", label_names=("a", "b"), metric="accuracy"
    )
    model = new_model(encoder, MethodConfig(name="houlsby", bottleneck_size=64), HeadConfig(), info)
    model.train()
    ids = torch.randint(1000, 20000, (batch, length))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    labels = torch.randint(0, 2, (batch,))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step() -> None:
        loss = step_loss(model, inputs, labels, regression=False)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up
    barrier.wait()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    out.put((t0, time.perf_counter()))


def run_layout(processes: int, threads: int, steps: int, batch: int, length: int) -> float:
    """Steps per second of ``processes`` processes x ``threads`` threads, ``steps`` steps each."""
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(threads, steps, batch, length, barrier, out))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    windows = [out.get() for _ in procs]
    for p in procs:
        p.join()
    wall = max(end for _, end in windows) - min(start for start, _ in windows)
    return processes * steps / wall


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10, help="steps per worker (the 1 x T layout does N x this)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--length", type=int, default=64)
    ap.add_argument("--json", help="also write the measurements to this JSON file")
    args = ap.parse_args()

    one, many = [], []
    for r in range(args.rounds):
        one.append(run_layout(1, args.threads, args.workers * args.steps, args.batch, args.length))
        many.append(run_layout(args.workers, 1, args.steps, args.batch, args.length))
        print(
            f"round {r + 1}: 1 x {args.threads} threads {one[-1]:.2f} steps/s, "
            f"{args.workers} x 1 thread {many[-1]:.2f} steps/s",
            flush=True,
        )
    a, b = statistics.median(one), statistics.median(many)
    print(
        f"median over {args.rounds} rounds: 1 x {args.threads}: {a:.2f} steps/s; {args.workers} x 1: {b:.2f} "
        f"steps/s; ratio {b / a:.2f}x (batch {args.batch} x {args.length} tokens, Houlsby 64, MiniLM)"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"one_process": one, "workers": many, "ratio": b / a, "args": vars(args)}, fh, indent=2)


if __name__ == "__main__":
    main()
