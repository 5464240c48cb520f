"""Benchmark (issue 16): where a bf16 training step's time goes, and what makes it faster, vs fp32.

One training step (forward, loss, backward, AdamW) of a fresh Pfeiffer / Houlsby adapter (bottleneck 64)
on the packaged MiniLM, one batch of the 32 longest SST-2 training sentences at ``--length`` tokens, one
thread; the variants run interleaved step by step, medians of ``--steps`` (one warm-up step not counted):

- ``fp32``: fp32 encoder, fp32 adapter, SDPA attention (the reference: the training step before);
- ``fp32 + eager attention``: what an fp32 training step is today (``AdapterModel.train`` switches to eager);
- ``bf16 before``: bf16 encoder, fp32 adapter computed in fp32 — every site casts the [batch, tokens,
  hidden] activations up to fp32 and the adapter's output back (the implementation before this change,
  reproduced here by patching ``Bottleneck.delta``);
- ``bf16``: the fp32 master weights cast to bf16 at each site, the activations never cast (SDPA);
- ``bf16 + eager attention``: today's bf16 training step — transformers' eager attention instead of SDPA
  (SDPA with dropout takes the math fallback on CPU: head transposes and a NaN-safe softmax);
  ``AdapterModel.train()`` switches to it (``backbone.loading.TRAIN_ATTENTION``), ``eval()`` back;
- ``bf16 + fused AdamW``: today's path with ``AdamW(fused=True)``.

``--profile`` prints the top operators of one step of each variant (torch.profiler).

    python bench/bench_train_fast.py [--steps 7] [--methods pfeiffer houlsby] [--profile]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

from adaptermix.artefacts.artefact import new_model
from adaptermix.backbone import load_encoder
from adaptermix.backbone.loading import set_attention
from adaptermix.data import load_task
from adaptermix.data.config import DataConfig
from adaptermix.methods import MethodConfig
from adaptermix.methods.bottleneck import Bottleneck
from adaptermix.model import HeadConfig
from adaptermix.training.batching import collate, tokenize
from adaptermix.training.loop import step_loss

NEW_DELTA = Bottleneck.delta


def old_delta(self: Bottleneck, h: torch.Tensor) -> torch.Tensor:
    """The adapter computed in its weights' dtype, the activations cast up and back (before)."""
    out: torch.Tensor = self.up(self.act(self.down(self.drop(h.to(self.down.weight.dtype)))))
    return out.to(h.dtype)



def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=7)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--length", type=int, default=64)
    ap.add_argument("--methods", nargs="+", default=["pfeiffer", "houlsby"])
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    task = load_task(DataConfig(name="sst2"), splits=("train",))
    rows = sorted(task.split("train"), key=lambda r: -len(r.text))[: args.batch]
    encs = {"fp32": load_encoder(precision="fp32"), "bf16": load_encoder(precision="bf16")}
    # variant -> (encoder, adapter delta, attention, fused AdamW)
    variants = {
        "fp32": ("fp32", NEW_DELTA, "sdpa", False),
        "fp32 + eager attention": ("fp32", NEW_DELTA, "eager", False),
        "bf16 before": ("bf16", old_delta, "sdpa", False),
        "bf16": ("bf16", NEW_DELTA, "sdpa", False),
        "bf16 + eager attention": ("bf16", NEW_DELTA, "eager", False),
        "bf16 + fused AdamW": ("bf16", NEW_DELTA, "sdpa", True),
    }
    summary: dict[str, float] = {}
    for method in args.methods:
        steps: dict[str, Callable[[], float]] = {}
        for name, (p, delta, attn, fused) in variants.items():
            enc = encs[p]
            tset = tokenize(enc.tokenizer, rows, args.length, False)
            batch = collate(tset, list(range(len(tset))))
            model = new_model(enc, MethodConfig(name=method, bottleneck_size=64), HeadConfig(), task.info)
            model.train()
            opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-4, fused=fused)
            model.detach_body()

            def step(model=model, opt=opt, batch=batch, labels=tset.labels, enc=enc, delta=delta, attn=attn) -> float:
                setattr(Bottleneck, "delta", delta)  # noqa: B010 (swapped per variant)
                set_attention(enc, attn)
                model.body.attach(enc)
                try:
                    t0 = time.perf_counter()
                    loss = step_loss(model, batch, labels, regression=False)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    return time.perf_counter() - t0
                finally:
                    model.detach_body()
                    set_attention(enc, "sdpa")
                    setattr(Bottleneck, "delta", NEW_DELTA)  # noqa: B010

            steps[name] = step
        times: dict[str, list[float]] = {n: [] for n in variants}
        for i in range(args.steps + 1):
            for name, step in steps.items():
                dt = step()
                if i:
                    times[name].append(dt)
        med = {n: statistics.median(v) for n, v in times.items()}
        print(f"\n## {method} (bottleneck 64), batch {args.batch} x {args.length} tokens, 1 thread, "
              f"median of {args.steps} interleaved steps")
        for name, v in med.items():
            print(f"  {name:24s} {v * 1000:8.1f} ms   vs fp32 {med['fp32'] / v:.2f}x")
            summary[f"{method}: {name} vs fp32"] = med["fp32"] / v
        if args.profile:
            from torch.profiler import ProfilerActivity, profile

            for name, step in steps.items():
                with profile(activities=[ProfilerActivity.CPU]) as prof:
                    step()
                print(f"\n### {name}\n" + prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    print("\n## summary")
    for k, v in summary.items():
        print(f"  {k}: {v:.2f}x")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
