"""Benchmark (issue 16): TextFooler's fast path vs today's implementation vs the unbatched/uncached baseline.

Victim: what sweeps attack — an :class:`AdapterModel` on the packaged MiniLM with a Pfeiffer adapter
(bottleneck 64) and head trained for a few steps on SST-2 (only timing matters, but a trained victim
makes the success rates meaningful). The same adapter weights are put on two encoders, one stored in
fp32 and one in bf16 (``load_encoder(precision=...)``). The same SST-2 test sentences (correctly
classified by the fp32 victim) are attacked, with the same resources and budget, by:

- ``fast``: bf16 victim encoder and bf16 similarity judge (what a sweep at precision bf16 runs),
  ``examples_in_flight`` examples in lock-step (one victim call and one judge call per round for all
  of them), query cache + embedding memo;
- ``today``: fp32 encoder, one example at a time (``examples_in_flight: 1``, the implementation before
  issue 16: batched within an example, cached);
- ``fp32 lock-step`` / ``bf16 per-example`` / ``bf16, fp32 judge`` (``--breakdown``): to split the gain
  between bf16 and cross-example batching, and the fp32/bf16 differences between victim and judge — and
  a real-model check that lock-step gives the same adversarial texts;
- ``baseline``: fp32, one input per victim / encoder call, no cache (``batch: false, cache: false``); run
  once (it is slow), the others ``--repeats`` times, alternating.

Reported: the median total seconds of each over repeats, the ratios (goals: fast vs today >= 3x, fast vs
baseline >= 15x), seconds spent in the victim and in the similarity judge, and the agreement of fp32 and
bf16 (success rate, goal within 2 points; per-example status and adversarial text). The similarity judge
(all-MiniLM-L6-v2 through sentence-transformers) runs at the victim's precision, as in sweeps. The
machine may be shared: ratios of one run are more reliable than seconds.

    ADAPTERMIX_DATA=... python bench/bench_textfooler_fast.py [--examples 12] [--max-queries 500]
        [--repeats 3] [--threads 1] [--in-flight 16] [--breakdown] [--device cpu]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import numpy as np
import torch

from adaptermix.artefacts.artefact import new_model
from adaptermix.attacks.model_victim import ModelVictim
from adaptermix.attacks.resources import ResourceConfig, ResourceContext, sentence_encoder
from adaptermix.attacks.textfooler import TextFoolerConfig, build_resources, textfooler
from adaptermix.attacks.victim import CachedVictim
from adaptermix.backbone import load_encoder
from adaptermix.data import load_task
from adaptermix.data.config import DataConfig
from adaptermix.methods import MethodConfig
from adaptermix.model import HeadConfig
from adaptermix.training.batching import collate, tokenize
from adaptermix.training.loop import step_loss


class Timed:
    """Wraps a callable and adds up the seconds spent in it."""

    def __init__(self, fn) -> None:
        self.fn = fn
        self.seconds = 0.0

    def __call__(self, *a):
        t0 = time.perf_counter()
        try:
            return self.fn(*a)
        finally:
            self.seconds += time.perf_counter() - t0


class TimedVictim:
    """A victim whose ``predict_proba`` is :class:`Timed`."""

    def __init__(self, victim: ModelVictim) -> None:
        self.num_labels, self.is_pair = victim.num_labels, victim.is_pair
        self.predict_proba = Timed(victim.predict_proba)


def train_victim(enc, task, steps: int, batch: int, seed: int = 0):
    """A Pfeiffer adapter + head trained for ``steps`` steps (fp32 encoder); returns its trainable state."""
    torch.manual_seed(seed)  # dropout masks: the same victim every run
    mcfg = MethodConfig(name="pfeiffer", bottleneck_size=64)
    model = new_model(enc, mcfg, HeadConfig(), task.info)
    rows = task.split("train")
    tset = tokenize(enc.tokenizer, rows, 64, False)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(tset), (batch,), generator=gen).tolist()
        loss = step_loss(model, collate(tset, idx), tset.labels[idx], regression=False)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    state = {k: v.detach().clone() for k, v in model.trainable_state().items()}
    model.detach_body()
    return mcfg, state


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=12)
    ap.add_argument("--max-queries", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--in-flight", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=64, help="the victim's forward batch size")
    ap.add_argument("--train-steps", type=int, default=60)
    ap.add_argument("--breakdown", action="store_true", help="also time fp32 in lock-step")
    ap.add_argument("--no-baseline", action="store_true", help="skip the (slow) unbatched/uncached run")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    task = load_task(DataConfig(name="sst2", max_train=2000, max_test=300), ("train", "test"))
    encs = {p: load_encoder(precision=p, device=args.device) for p in ("fp32", "bf16")}
    t0 = time.perf_counter()
    mcfg, state = train_victim(encs["fp32"], task, args.train_steps, 16)
    t_train = time.perf_counter() - t0
    victims = {}
    for p, enc in encs.items():
        model = new_model(enc, mcfg, HeadConfig(), task.info)
        model.load_trainable_state(state)
        model.eval()
        victims[p] = ModelVictim(model, 128, args.batch_size)
    test = task.split("test")
    clean = {p: v.predict_proba([(e.text, None) for e in test]).argmax(1) for p, v in victims.items()}
    gold = np.array([e.label for e in test])
    chosen = [e for e, c in zip(test, clean["fp32"], strict=True) if c == e.label][: args.examples]
    print(f"victim: pfeiffer adapter trained {args.train_steps} steps ({t_train:.0f}s); clean accuracy on "
          f"{len(test)} test sentences fp32 {np.mean(clean['fp32'] == gold):.3f}, bf16 "
          f"{np.mean(clean['bf16'] == gold):.3f}, predictions agree {np.mean(clean['fp32'] == clean['bf16']):.4f}; "
          f"attacking {len(chosen)} (correct under fp32), max_queries {args.max_queries}, "
          f"threads {torch.get_num_threads()}, device {args.device}")

    base = TextFoolerConfig(max_queries=args.max_queries)
    ctx = ResourceContext(ResourceConfig(device=args.device))
    shared = build_resources(base, ctx)  # word vectors, POS and stop words shared; one judge per precision
    resources = {p: dataclasses.replace(shared, encode=Timed(sentence_encoder(device=args.device, precision=p)))
                 for p in encs}
    judges = {p: r.encode for p, r in resources.items()}
    runs = {
        "fast": (base.model_copy(update={"examples_in_flight": args.in_flight}), "bf16"),
        "today": (base.model_copy(update={"examples_in_flight": 1}), "fp32"),
    }
    if args.breakdown:
        runs["fp32 lock-step"] = (base.model_copy(update={"examples_in_flight": args.in_flight}), "fp32")
        runs["bf16 per-example"] = (base.model_copy(update={"examples_in_flight": 1}), "bf16")
        runs["bf16, fp32 judge"] = (base.model_copy(update={"examples_in_flight": args.in_flight}), "bf16+fp32")
    baseline = (base.model_copy(update={"batch": False, "cache": False}), "fp32")

    def attack(cfg: TextFoolerConfig, precision: str, examples) -> tuple[float, float, float, object]:
        precision, _, judged = precision.partition("+")  # "bf16+fp32": bf16 victim, fp32 judge
        recipe = textfooler(cfg, resources[judged or precision])
        judge = judges[judged or precision]
        timed = TimedVictim(victims[precision])
        victim = CachedVictim(timed, "bench", cache=cfg.cache)
        judge.seconds = 0.0
        start = time.perf_counter()
        report = recipe.run(examples, victim)
        return time.perf_counter() - start, timed.predict_proba.seconds, judge.seconds, report

    # Warm-up: every path once on all examples (first calls allocate; WordNet's POS lookups, shared by
    # every run, are cached), so that no run pays for another's cold start.
    for cfg, p in runs.values():
        attack(cfg, p, chosen)
    times: dict[str, list[tuple[float, float, float]]] = {k: [] for k in runs}
    reports = {}
    for r in range(args.repeats):
        for name, (cfg, p) in (list(runs.items()) if r % 2 == 0 else list(runs.items())[::-1]):  # alternate order
            total, vic, jud, reports[name] = attack(cfg, p, chosen)
            times[name].append((total, vic, jud))
            print(f"  repeat {r + 1} {name:17s} {total:7.1f}s (victim {vic:6.1f}s, judge {jud:6.1f}s)", flush=True)
    if not args.no_baseline:
        total, vic, jud, reports["baseline"] = attack(*baseline, chosen)
        times["baseline"] = [(total, vic, jud)]
        print(f"  baseline          {total:7.1f}s (victim {vic:6.1f}s, judge {jud:6.1f}s)", flush=True)

    med = {k: [statistics.median(t[i] for t in v) for i in range(3)] for k, v in times.items()}
    print(f"\n== TextFooler fast path: {len(chosen)} SST-2 examples, max_queries {args.max_queries}, "
          f"in flight {args.in_flight}, median of {args.repeats} (baseline once) ==")
    for k, (total, vic, jud) in med.items():
        o = reports[k].outcomes
        print(f"  {k:17s} {total:7.1f}s  victim {vic:6.1f}s  judge {jud:6.1f}s  "
              f"success {sum(x.status == 'success' for x in o)}/{len(o)}  queries {sum(x.queries for x in o)}")
    fast = med["fast"][0]
    print(f"  fast vs today (fp32, per-example, cached): {med['today'][0] / fast:.2f}x (goal >= 3x)")
    if "baseline" in med:
        print(f"  fast vs unbatched/uncached fp32: {med['baseline'][0] / fast:.2f}x (goal >= 15x)")
    if args.breakdown:
        print(f"  bf16 alone (bf16 per-example vs today): {med['today'][0] / med['bf16 per-example'][0]:.2f}x; "
              f"lock-step alone (fp32 lock-step vs today): {med['today'][0] / med['fp32 lock-step'][0]:.2f}x")
        same = sum(a.adversarial == b.adversarial and a.status == b.status and a.queries == b.queries
                   for a, b in zip(reports["today"].outcomes, reports["fp32 lock-step"].outcomes, strict=True))
        print(f"  fp32 lock-step vs fp32 per-example: identical text, status, queries on {same}/{len(chosen)}")
    if args.breakdown:
        c = reports["bf16, fp32 judge"].outcomes
        print(f"  bf16 victim with the fp32 judge vs fp32: same status "
              f"{sum(x.status == y.status for x, y in zip(reports['today'].outcomes, c, strict=True))}/{len(c)}, "
              f"success {sum(x.status == 'success' for x in c)}/{len(c)}")
    a, b = reports["today"].outcomes, reports["fast"].outcomes
    rate = {k: 100 * np.mean([x.status == "success" for x in o]) for k, o in (("fp32", a), ("bf16", b))}
    print(f"  success rate fp32 {rate['fp32']:.1f}%, bf16 {rate['bf16']:.1f}%: difference "
          f"{abs(rate['fp32'] - rate['bf16']):.1f} points (goal <= 2); same status "
          f"{sum(x.status == y.status for x, y in zip(a, b, strict=True))}/{len(a)}, same adversarial text "
          f"{sum(x.adversarial == y.adversarial for x, y in zip(a, b, strict=True))}/{len(a)}")
    for x, y in zip(a, b, strict=True):
        if x.adversarial != y.adversarial:
            print(f"    differs: fp32 {x.status} ({x.n_perturbed} swaps) vs bf16 {y.status} ({y.n_perturbed} swaps)")


if __name__ == "__main__":
    main()
