"""Cost of one AdaMix training step vs one Houlsby step of the same bottleneck size (packaged MiniLM).

Runs ``--reps`` rounds; in each round every variant does one full training step (forward, loss, backward,
AdamW update) on the same batch of ``--batch`` x ``--length`` tokens, with its body attached to the one
shared encoder only for its own step. Interleaving the variants round by round keeps them side by side
under the same machine load; the medians of the timed steps (after ``--warmup`` rounds) and their ratios
to Houlsby are printed, for wall time and for the CPU time of this process (``time.process_time``, less
sensitive to other jobs on a shared machine). Goal (Wang et al. 2022, Sec. 3): AdaMix without
consistency <= 1.15x Houlsby; with consistency about two forwards (~2x).

Because whole steps are noisy on a shared CPU, the adapters' own cost is also measured in isolation
(``--adapter-reps``): every site of the body applied in sequence to a hidden-state tensor of the batch's
shape, plus backward and the AdamW update of the adapter parameters, i.e. everything in which an AdaMix
step differs from a Houlsby step (route draw, expert selection, more parameters in the optimizer).

    .venv/bin/python bench/bench_adamix_step.py [--reps 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from adaptermix.artefacts.artefact import new_model
from adaptermix.backbone.loading import DEFAULT_MODEL, load_encoder
from adaptermix.data.schema import TaskInfo
from adaptermix.methods import MethodConfig
from adaptermix.model import AdapterModel, HeadConfig
from adaptermix.training.loop import step_loss

VARIANTS: dict[str, dict] = {
    "houlsby": {"name": "houlsby"},
    "adamix (no consistency)": {"name": "adamix", "adamix": {"consistency_weight": 0.0}},
    "adamix (consistency)": {"name": "adamix", "adamix": {"consistency_weight": 1.0}},
}


def make_step(model: AdapterModel, batch: dict[str, torch.Tensor], labels: torch.Tensor):
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step() -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        loss = step_loss(model, batch, labels, regression=False)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - t0, time.process_time() - c0

    return step


def make_adapter_step(model: AdapterModel, hidden: torch.Tensor):
    """Time the body alone: all sites in sequence on ``hidden``, backward, AdamW (CPU seconds)."""
    body = model.body
    opt = torch.optim.AdamW(list(body.parameters()), lr=1e-4)
    prepare = getattr(body, "prepare_forward", None)  # AdaMix: draw this step's route

    def step() -> float:
        c0 = time.process_time()
        if prepare is not None:
            prepare()
        x = hidden
        for _, _, site in body.site_modules():
            x = site.hook(site, (x,), x)
        loss = x.pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.process_time() - c0

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--length", type=int, default=64)
    ap.add_argument("--bottleneck", type=int, default=64)
    ap.add_argument("--experts", type=int, default=4)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--adapter-reps", type=int, default=50)
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()

    torch.manual_seed(0)
    enc = load_encoder(args.model)
    vocab = enc.model.get_input_embeddings().num_embeddings
    batch = {
        "input_ids": torch.randint(1000, vocab, (args.batch, args.length)),
        "attention_mask": torch.ones(args.batch, args.length, dtype=torch.long),
    }
    labels = torch.randint(0, 2, (args.batch,))
    info = TaskInfo(
        name="bench", task="single", problem="classification", label_names=("a", "b"), metric="accuracy"
    )
    models, steps = {}, {}
    for name, spec in VARIANTS.items():
        cfg = MethodConfig.model_validate(
            {
                **spec,
                "bottleneck_size": args.bottleneck,
                "adamix": {**spec.get("adamix", {}), "num_experts": args.experts},
            }
        )
        model = new_model(enc, cfg, HeadConfig(), info)
        model.detach_body()
        model.train()
        models[name], steps[name] = model, make_step(model, batch, labels)
    times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in VARIANTS}
    for rep in range(args.warmup + args.reps):
        for name, model in models.items():
            model.body.attach(enc)
            try:
                wall, cpu = steps[name]()
            finally:
                model.body.detach()
            if rep >= args.warmup:
                times[name]["wall"].append(wall)
                times[name]["cpu"].append(cpu)
    base = {clock: statistics.median(times["houlsby"][clock]) for clock in ("wall", "cpu")}
    result = {
        "model": args.model,
        "batch": args.batch,
        "length": args.length,
        "bottleneck": args.bottleneck,
        "experts": args.experts,
        "threads": torch.get_num_threads(),
        "reps": args.reps,
        "variants": {},
    }
    print(
        f"{args.model}: batch {args.batch} x {args.length} tokens, bottleneck {args.bottleneck}, "
        f"M={args.experts}, {torch.get_num_threads()} threads, median of {args.reps} steps"
    )
    for name, clocks in times.items():
        entry = result["variants"][name] = {}
        line = f"  {name:<26}"
        for clock, ts in clocks.items():
            med = statistics.median(ts)
            entry[clock] = {"median_s": med, "ratio_to_houlsby": med / base[clock], "steps_s": ts}
            line += f" {clock} {med * 1000:8.1f} ms/step {med / base[clock]:5.2f}x houlsby |"
        print(line.rstrip(" |"))
    hidden = torch.randn(args.batch, args.length, enc.hidden_size)
    adapter_steps = {
        name: make_adapter_step(models[name], hidden) for name in VARIANTS if "no consistency" in name
    }
    adapter_steps = {"houlsby": make_adapter_step(models["houlsby"], hidden), **adapter_steps}
    adapter_times: dict[str, list[float]] = {name: [] for name in adapter_steps}
    for rep in range(args.warmup + args.adapter_reps):
        for name, fn in adapter_steps.items():
            dt = fn()
            if rep >= args.warmup:
                adapter_times[name].append(dt)
    full = base["cpu"]
    print(f"adapters only (all sites + backward + AdamW), CPU median of {args.adapter_reps}:")
    for name, ts in adapter_times.items():
        med = statistics.median(ts)
        extra = med - statistics.median(adapter_times["houlsby"])
        result["variants"][name]["adapters_only_cpu_s"] = med
        print(
            f"  {name:<26} {med * 1000:8.1f} ms  ({extra * 1000:+.1f} ms vs houlsby = {extra / full:+.2%} of a step)"
        )
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
