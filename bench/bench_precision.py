"""Benchmark (issue 16): the bf16 fast path vs fp32, side by side in one process, on the packaged MiniLM.

Two encoders are loaded, one stored in fp32 and one in bf16 (``load_encoder(precision=...)``: the weights
are converted once; no autocast). On the same SST-2 test examples and the same mixtures of a pool of 6
random Pfeiffer adapters (bottleneck 64; speed does not depend on training), each repeat times, in turn:

- ``runner fp32`` / ``runner bf16``: :func:`adaptermix.sweep.runner.evaluate_group` (the sweep runner);
- ``runner bf16, fp32 adapter``: the bf16 encoder with the live adapter kept in fp32 (hidden states cast
  up to the adapter and its output cast back at every site) — the alternative to the default bf16 buffer;
- ``floor fp32`` / ``floor bf16``: the bare frozen encoder (no adapter hooks) over the runner's batches;
- ``naive fp32 @ max_length``: a per-mixture state-dict average + fixed-length padding + ``no_grad``
  (see bench/bench_sweep.py).

Then a training step (forward, loss, backward, AdamW) of a fresh adapter on one batch of ``--train-batch``
x ``--train-length`` tokens, fp32 vs bf16 encoder (fp32 adapter and head in both), interleaved step by
step; ``--profile`` prints the top operators of one bf16 and one fp32 step.

Medians over repeats; ratios are of medians measured in the same run. The machine may be shared: the
absolute times are noisy, the side-by-side ratios much less so. One thread by default (``--threads``).

    ADAPTERMIX_DATA=... python bench/bench_precision.py [--examples 128] [--mixtures 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sweep import floor, make_pool, naive, random_subsets, runner  # noqa: E402

from adaptermix.artefacts.artefact import new_model  # noqa: E402
from adaptermix.backbone import load_encoder  # noqa: E402
from adaptermix.data import load_task  # noqa: E402
from adaptermix.data.config import DataConfig  # noqa: E402
from adaptermix.data.sampling import stratified_sample  # noqa: E402
from adaptermix.methods import MethodConfig  # noqa: E402
from adaptermix.model import HeadConfig  # noqa: E402
from adaptermix.sweep.live import LiveModel  # noqa: E402
from adaptermix.sweep.runner import SweepContext  # noqa: E402
from adaptermix.sweep.spec import SweepSpec  # noqa: E402
from adaptermix.training.batching import collate, tokenize  # noqa: E402
from adaptermix.training.loop import step_loss  # noqa: E402


def detached(ctx: SweepContext, fn, *args):
    """Run ``fn`` with ``ctx``'s adapter body off its encoder (the bare forward, or another body)."""
    ctx.live.model.detach_body()
    try:
        return fn(*args)
    finally:
        ctx.live.model.body.attach(ctx.encoder)


def sweep_bench(args, task, rows) -> dict[str, float]:
    enc32 = load_encoder(precision="fp32")
    enc16 = load_encoder(precision="bf16")
    gen = torch.Generator().manual_seed(0)
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        pool_dirs = make_pool(Path(tmp), enc32, task, 6)
        subsets = random_subsets(list(pool_dirs), args.mixtures, gen)
        specs = {p: SweepSpec(pool={n: str(d) for n, d in pool_dirs.items()}, max_eval_examples=args.examples,
                              max_length=args.max_length, batch_size=args.batch_size, precision=p)
                 for p in ("fp32", "bf16")}
        ctx32 = SweepContext.prepare(specs["fp32"], enc32)
        ctx16 = SweepContext.prepare(specs["bf16"], enc16)
        es = ctx32.eval_set("a0")
        ctx16.eval_set("a0")
        # The alternative boundary: fp32 live adapter on the bf16 encoder (cast up and back at every site).
        ctx16f = SweepContext.prepare(specs["bf16"], enc16)
        ctx16f.eval_sets = ctx16.eval_sets
        ctx16f.live.close()
        ctx16f.live = LiveModel.build(enc16, ctx16f.pool.adapters[0], ctx16f.pool.stacked.layout, torch.float32)
        ctx16f.live.model.detach_body()
        real_tokens = sum(len(x) for x in es.tokens.input_ids)

        def timed(name: str, fn, *a) -> None:
            times.setdefault(name, []).append(fn(*a))

        def fp32_adapter_runner() -> float:
            ctx16f.live.model.body.attach(enc16)
            try:
                return runner(ctx16f, subsets)
            finally:
                ctx16f.live.model.detach_body()

        for i in range(args.repeats + 1):
            if i == 1:  # the first round warms up (oneDNN kernels, allocator): not counted
                times.clear()
            timed("runner fp32", runner, ctx32, subsets)
            timed("runner bf16", runner, ctx16, subsets)
            timed("runner bf16, fp32 adapter", detached, ctx16, fp32_adapter_runner)
            timed("floor fp32", detached, ctx32, floor, enc32, es.tokens, args.batch_size, len(subsets))
            timed("floor bf16", detached, ctx16, floor, enc16, es.tokens, args.batch_size, len(subsets))
            timed(f"naive fp32 @{args.max_length}", detached, ctx32, naive, pool_dirs, subsets, enc32, es.examples,
                  args.max_length, args.batch_size)
        for c in (ctx32, ctx16):
            c.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n## sweep: MiniLM, 6 Pfeiffer adapters (bottleneck 64), {len(rows)} SST-2 test examples, "
          f"{args.mixtures} mixtures (k=2..6), max_length {args.max_length}, batch {args.batch_size}, "
          f"threads {torch.get_num_threads()}, median of {args.repeats}")
    for k, v in med.items():
        print(f"  {k:28s} {v:8.3f} s  {len(subsets) / v:6.2f} mixtures/s  {real_tokens * len(subsets) / v:9.0f} real tokens/s")
    naive_key = f"naive fp32 @{args.max_length}"
    ratios = {
        "runner bf16 vs runner fp32 (speed-up, goal >= 2.8x)": med["runner fp32"] / med["runner bf16"],
        "runner bf16 / bare bf16 forward (goal <= 1.15x)": med["runner bf16"] / med["floor bf16"],
        f"runner bf16 vs naive fp32 padded to {args.max_length} (goal >= 13x)": med[naive_key] / med["runner bf16"],
        "runner fp32 / bare fp32 forward": med["runner fp32"] / med["floor fp32"],
        "bare forward bf16 vs fp32 (speed-up)": med["floor fp32"] / med["floor bf16"],
        "bf16 adapter buffer vs fp32 adapter with casts (speed-up)": med["runner bf16, fp32 adapter"] / med["runner bf16"],
    }
    for k, v in ratios.items():
        print(f"  {k}: {v:.2f}x")
    return ratios


def train_bench(args, task) -> dict[str, float]:
    # The longest training sentences, so the batch is (close to) --train-batch x --train-length tokens.
    rows = sorted(task.split("train"), key=lambda r: -len(r.text))[: args.train_batch]
    out: dict[str, float] = {}
    encs = {"fp32": load_encoder(precision="fp32"), "bf16": load_encoder(precision="bf16")}
    for method in args.train_methods:
        mcfg = MethodConfig(name=method, bottleneck_size=64)
        steps, models = {}, {}
        for p, enc in encs.items():
            tset = tokenize(enc.tokenizer, rows, args.train_length, False)
            batch = collate(tset, list(range(len(tset))))
            labels = tset.labels
            model = new_model(enc, mcfg, HeadConfig(), task.info)
            model.train()
            opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-4)

            def step(model=model, opt=opt, batch=batch, labels=labels) -> float:
                t0 = time.perf_counter()
                loss = step_loss(model, batch, labels, regression=False)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                return time.perf_counter() - t0

            steps[p], models[p], shape = step, model, tuple(batch["input_ids"].shape)
            model.detach_body()
        times: dict[str, list[float]] = {p: [] for p in encs}
        for i in range(args.train_steps + 1):
            for p in encs:
                models[p].body.attach(encs[p])
                dt = steps[p]()
                models[p].detach_body()
                if i:  # the first step warms up
                    times[p].append(dt)
        med = {p: statistics.median(v) for p, v in times.items()}
        print(f"\n## training step: {method} (bottleneck 64), batch {shape[0]} x {shape[1]} tokens, "
              f"threads {torch.get_num_threads()}, median of {args.train_steps}")
        for p, v in med.items():
            print(f"  {p}: {v * 1000:8.1f} ms")
        out[f"train {method} bf16 vs fp32 (speed-up, goal >= 2x)"] = med["fp32"] / med["bf16"]
        print(f"  bf16 vs fp32: {med['fp32'] / med['bf16']:.2f}x")
        if args.profile:
            from torch.profiler import ProfilerActivity, profile

            for p in encs:
                models[p].body.attach(encs[p])
                with profile(activities=[ProfilerActivity.CPU]) as prof:
                    steps[p]()
                models[p].detach_body()
                print(f"\n### profile of one {p} step ({method})")
                print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=128)
    ap.add_argument("--mixtures", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-batch", type=int, default=32)
    ap.add_argument("--train-length", type=int, default=64)
    ap.add_argument("--train-steps", type=int, default=5)
    ap.add_argument("--train-methods", nargs="+", default=["pfeiffer", "houlsby"])
    ap.add_argument("--skip-sweep", action="store_true")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--profile", action="store_true", help="print the top operators of one step per precision")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    task = load_task(DataConfig(name="sst2"), splits=("train", "test"))
    rows = stratified_sample(task.split("test"), args.examples, 0)
    ratios: dict[str, float] = {}
    if not args.skip_sweep:
        ratios.update(sweep_bench(args, task, rows))
    if not args.skip_train:
        ratios.update(train_bench(args, task))
    print("\n## summary (ratios of medians measured side by side in this run)")
    for k, v in ratios.items():
        print(f"  {k}: {v:.2f}x")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
