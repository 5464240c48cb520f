"""Benchmark (issue 16, "explore beyond"): attention kernels, torch.compile and threads vs today's bf16 path.

On the packaged MiniLM in bf16 with one random Pfeiffer adapter (bottleneck 64) written into a sweep's
live model (:class:`adaptermix.sweep.live.LiveModel`, the adapter in bf16) and 128 SST-2 test sentences of
the packaged data pack (length-sorted batches of 32, dynamic padding, ``inference_mode``), each round
times, interleaved, one pass over the batches of:

- ``today``: the bf16 path as it is (transformers 5 loads MiniLM with ``attn_implementation="sdpa"``);
- ``eager attention``: the same model switched to transformers' eager attention (matmul + softmax);
- ``compile default`` / ``compile max-autotune-no-cudagraphs``: ``torch.compile`` of the whole adapter
  model (hooks included; CPU inductor, which needs a C++ compiler — ``g++`` is checked);
- ``threads 2``: today's path with ``torch.set_num_threads(2)`` (everything else runs one thread).

A variant that fails (compile errors, no compiler) is reported with its error and left out. The first
round warms up (compilation happens there) and is not counted; the compile time is printed apart.
Exactness of each variant vs ``today``: max |logit diff| and prediction agreement over the 128 sentences.

Measured (2-core AMX Xeon shared with other jobs, ``--repeats 5``), vs today's bf16 path:
eager attention 0.914x (max |logit diff| 0.0058, 128/128 agree) — SDPA stays the evaluation kernel;
compile default 1.41x and max-autotune-no-cudagraphs 1.18x (max |logit diff| 0.0062, 128/128 agree; 191 s
and 56 s of compilation in the first round) — not wired in: the compile cost is paid per process, and a
compiled model skips the cached prefix's per-batch hooks (a per-block compile would be the next step);
two threads 0.126x on this oversubscribed machine — one thread stays. g++ was present.

    python bench/bench_explore.py [--examples 128] [--repeats 5] [--variants today eager ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from adaptermix.artefacts.artefact import AdapterMeta, load_adapter, new_model, save_adapter, task_to_dict  # noqa: E402
from adaptermix.backbone import load_encoder  # noqa: E402
from adaptermix.backbone.loading import set_attention
from adaptermix.data import load_task  # noqa: E402
from adaptermix.data.config import DataConfig  # noqa: E402
from adaptermix.data.sampling import stratified_sample  # noqa: E402
from adaptermix.methods import MethodConfig  # noqa: E402
from adaptermix.model import HeadConfig  # noqa: E402
from adaptermix.sweep.live import LiveModel  # noqa: E402
from adaptermix.training.batching import eval_batches, tokenize  # noqa: E402

VARIANTS = ("today", "eager", "compile-default", "compile-max-autotune-no-cudagraphs", "threads-2")


def random_adapter(root: Path, encoder, task) -> Path:
    mcfg = MethodConfig(name="pfeiffer", bottleneck_size=64)
    model = new_model(encoder, mcfg, HeadConfig(), task.info)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in list(model.body.parameters()) + list(model.head.parameters()):
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    meta = AdapterMeta(method=mcfg.model_dump(mode="json"), head=HeadConfig().model_dump(),
                       base_model=AdapterMeta.describe_base(encoder), task=task_to_dict(task.info),
                       training={"data": {"name": "sst2"}, "max_length": 128})
    state = model.trainable_state()
    model.detach_body()
    return save_adapter(root / "a0", state, meta)



def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = ap.parse_args()
    torch.set_num_threads(1)
    import tempfile

    encoder = load_encoder(precision="bf16")
    task = load_task(DataConfig(name="sst2"), splits=("test",))
    rows = stratified_sample(task.split("test"), args.examples, 0)
    tset = tokenize(encoder.tokenizer, rows, args.max_length, False)
    batches = [b for _, b in eval_batches(tset, args.batch_size)]
    print(f"MiniLM bf16 (attention {encoder.model.config._attn_implementation}), Pfeiffer adapter, {len(rows)} "
          f"SST-2 test sentences, batches of {args.batch_size}, torch {torch.__version__}, g++: "
          f"{shutil.which('g++') or 'missing'}")
    with tempfile.TemporaryDirectory() as tmp:
        adapter = load_adapter(random_adapter(Path(tmp), encoder, task))
    live = LiveModel.of_adapter(encoder, adapter)
    model = live.model

    def plain(batch):
        return model(**batch)

    def eager(batch):
        set_attention(encoder, "eager")
        try:
            return model(**batch)
        finally:
            set_attention(encoder, "sdpa")

    def two_threads(batch):
        torch.set_num_threads(2)
        try:
            return model(**batch)
        finally:
            torch.set_num_threads(1)

    fns: dict[str, Callable] = {"today": plain, "eager": eager, "threads-2": two_threads}
    for mode in ("default", "max-autotune-no-cudagraphs"):
        compiled = torch.compile(model, mode=mode)
        fns[f"compile-{mode}"] = compiled  # calls compiled(**batch): see run()

    def run(name: str) -> tuple[float, np.ndarray]:
        fn = fns[name]
        out = []
        t0 = time.perf_counter()
        with torch.inference_mode():
            for b in batches:
                out.append(fn(**b) if name.startswith("compile") else fn(b))
        dt = time.perf_counter() - t0
        return dt, torch.cat(out).float().numpy()

    times: dict[str, list[float]] = {v: [] for v in args.variants}
    logits: dict[str, np.ndarray] = {}
    errors: dict[str, str] = {}
    first: dict[str, float] = {}
    for i in range(args.repeats + 1):
        for name in args.variants:
            if name in errors:
                continue
            try:
                dt, out = run(name)
            except Exception as exc:  # compile failures are results here
                errors[name] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                traceback.print_exc(limit=3)
                continue
            if i == 0:
                first[name], logits[name] = dt, out
            else:
                times[name].append(dt)
    med = {k: statistics.median(v) for k, v in times.items() if v}
    ref = logits["today"]
    print(f"median of {args.repeats} interleaved rounds (first round = warm-up/compile, not counted), 1 thread "
          "unless said")
    for name in args.variants:
        if name in errors:
            print(f"  {name:38s} FAILED: {errors[name]}")
            continue
        diff = float(np.abs(logits[name] - ref).max())
        agree = int((logits[name].argmax(1) == ref.argmax(1)).sum())
        print(f"  {name:38s} {med[name] * 1000:8.1f} ms/pass  vs today {med['today'] / med[name]:.3f}x  "
              f"max|dlogit| {diff:.3g}  agree {agree}/{len(ref)}  first round {first[name]:.1f} s")
    live.close()


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
