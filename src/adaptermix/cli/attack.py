"""``adaptermix attack ADAPTER``: TextFooler or FGSM on one adapter (or mixture) with a readable report.

Writes ``report.json`` (config, summary, every example) and, for TextFooler, ``examples.md`` — a table of
adversarial examples next to their originals with the swapped words in bold.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from adaptermix.cli.base import Command, add_overwrite, add_precision, command_inputs, register_command
from adaptermix.config import parse_override


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("adapter", help="adapter (or mixture) directory")
    p.add_argument("--attack", choices=["textfooler", "fgsm"], default="textfooler")
    p.add_argument("-o", "--output-dir", required=True, help="writes report.json (+ examples.md for TextFooler)")
    p.add_argument("--split", default="test")
    p.add_argument("--max-examples", type=int, default=100, help="examples attacked (seeded, stratified sample)")
    p.add_argument("--epsilon", type=float, default=0.01, help="FGSM step on word embeddings (paper: 0.01)")
    p.add_argument("--data-dir", help="data pack directory (default: $ADAPTERMIX_DATA, else the embedded one)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="TextFooler setting, e.g. --param min_cos_sim=0.5 --param max_queries=2000")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--sentence-encoder", metavar="MODEL",
                   help="TextFooler's sentence-similarity judge (model id with a local copy, or a folder; default "
                   "sentence-transformers/all-MiniLM-L6-v2); recorded in report.json")
    add_overwrite(p)
    add_precision(p)


def _run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from adaptermix.artefact import load_adapter
    from adaptermix.attacks.resources import judge_note
    from adaptermix.backbone.loading import load_encoder
    from adaptermix.io import atomic_write_json, atomic_write_text, check_output, mark_output, output_stamp
    from adaptermix.sweep.evaluations import EVALUATIONS
    from adaptermix.sweep.runner import SweepContext
    from adaptermix.sweep.spec import SweepSpec

    stamp = output_stamp("attack", command_inputs(args, skip=("output_dir", "batch_size")))
    check_output(args.output_dir, stamp=stamp, overwrite=args.overwrite)
    adapter = load_adapter(args.adapter)
    params: dict = {}
    for item in args.param:
        keys, value = parse_override(item)
        node = params
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    if args.sentence_encoder:
        params.setdefault("resources", {})["sentence_encoder"] = args.sentence_encoder
    name = adapter.name
    spec = SweepSpec(pool={name: str(Path(args.adapter))}, split=args.split, max_eval_examples=args.max_examples,
                     evaluations=(args.attack,), data=args.data_dir, batch_size=args.batch_size,
                     textfooler={**params, "max_examples": args.max_examples}, fgsm={"epsilon": args.epsilon})
    encoder = load_encoder(adapter.meta.base_model["name"], precision=args.precision)
    ctx = SweepContext.prepare(spec, encoder)
    try:
        vector = ctx.pool.flat[0]
        ctx.live.write(vector)
        ctx.live.use_head(name, adapter)
        es = ctx.eval_set(name)
        clean = EVALUATIONS.get("clean")(ctx.live.model, es, {}, name, args.batch_size)
        evaluation = EVALUATIONS.get(args.attack)
        eval_args = (ctx.live.model, es, spec.eval_params(args.attack), name, args.batch_size)
        if args.attack == "textfooler":  # seconds per example: show a bar with an ETA
            with tqdm(desc="textfooler", unit="example") as bar:

                def tick(done: int, total: int) -> None:
                    bar.total = total
                    bar.update(done - bar.n)

                outcome = evaluation(*eval_args, progress=tick)
        else:
            outcome = evaluation(*eval_args)
    finally:
        ctx.close()
    out = Path(args.output_dir)
    judge = outcome.metrics.get("sentence_encoder")
    same = bool(outcome.metrics.get("sentence_encoder_is_victim_backbone"))
    report = {"adapter": args.adapter, "attack": args.attack, "split": args.split, "n_examples": len(es.examples),
              "metric": es.info.metric, "clean": clean.metrics, "attacked": outcome.metrics,
              "examples": [vars(e) for e in outcome.adversarial]}
    if judge is not None:
        report["sentence_encoder"] = {"model": judge, "is_victim_backbone": same,
                                      "victim_backbone": adapter.meta.base_model.get("name")}
        if same:
            report["sentence_encoder"]["note"] = judge_note(str(judge))
    atomic_write_json(out / "report.json", report)
    if args.attack == "textfooler":
        atomic_write_text(out / "examples.md", examples_markdown(outcome.adversarial))
    mark_output(out, stamp)
    m = es.info.metric
    print(f"{args.attack} on {name} ({len(es.examples)} {args.split} examples): clean {m} "
          f"{clean.metric:.4f} -> under attack {outcome.metric if outcome.metric is None else round(outcome.metric, 4)}")
    print(json.dumps({k: v for k, v in outcome.metrics.items() if not isinstance(v, dict)}, indent=2, default=str))
    if judge is not None and same:
        print(judge_note(str(judge)))
    print(f"wrote {out / 'report.json'}" + (f" and {out / 'examples.md'}" if args.attack == "textfooler" else ""))
    return 0


def examples_markdown(examples: tuple, limit: int | None = None) -> str:
    """A Markdown table of adversarial examples (successful first) with their originals."""
    rows = ["| # | gold | prediction -> after | original | adversarial | words changed | queries |",
            "|---|---|---|---|---|---|---|"]
    ordered = sorted(examples, key=lambda e: (not e.success, e.idx))[:limit]
    for e in ordered:
        orig = e.original if e.original_pair is None else f"{e.original} ‖ {e.original_pair}"
        adv = e.adversarial if e.adversarial_pair is None else f"{e.adversarial} ‖ {e.adversarial_pair}"
        cell = [str(e.idx), e.original_label, f"{e.original_prediction} -> {e.new_prediction}",
                orig.replace("|", "\\|"), adv.replace("|", "\\|"), str(e.perturbed_words), str(e.queries)]
        rows.append("| " + " | ".join(cell) + " |")
    return "\n".join(rows) + "\n"


register_command(Command("attack", "TextFooler or FGSM on one adapter or mixture; writes a readable report", _args, _run))
