"""``adaptermix attack ADAPTER``: an attack (any adversarial evaluation kind: TextFooler, FGSM ...) on one
adapter (or mixture) with a readable report.

Writes ``report.json`` (config, summary, every example) and, for kinds that keep adversarial examples
(TextFooler), ``examples.md`` — a table of adversarial examples next to their originals with the swapped
words in bold. The work is :func:`adaptermix.evaluations.adapter.evaluate_adapter`; this is its CLI.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from adaptermix.cli.base import Command, add_overwrite, add_precision, command_inputs, register_command
from adaptermix.core.config import parse_override


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("adapter", help="adapter (or mixture) directory")
    p.add_argument("--attack", default="textfooler", metavar="KIND",
                   help="an adversarial evaluation kind (adaptermix list evaluations): textfooler (default), fgsm")
    p.add_argument("-o", "--output-dir", required=True,
                   help="writes report.json (+ examples.md for kinds that keep examples: TextFooler)")
    p.add_argument("--split", default="test")
    p.add_argument("--max-examples", type=int, default=100, help="examples attacked (seeded, stratified sample)")
    p.add_argument("--epsilon", type=float,
                   help="FGSM step on word embeddings (default: FGSM's, the paper's 0.01); = --param epsilon=E")
    p.add_argument("--data-dir", help="data pack directory (default: $ADAPTERMIX_DATA, else the embedded one)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter of the attack, e.g. --param min_cos_sim=0.5 --param max_queries=2000 "
                   "(TextFooler); adaptermix list evaluations shows them")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--sentence-encoder", metavar="MODEL",
                   help="TextFooler's sentence-similarity judge (model id with a local copy, or a folder; default "
                   "sentence-transformers/all-MiniLM-L6-v2); recorded in report.json")
    add_overwrite(p)
    add_precision(p)


def attack_params(args: argparse.Namespace, fields: set[str]) -> dict[str, Any]:
    """The attack's parameters from ``--param`` and the shorthand flags that apply to the kind (one with
    these ``fields``): ``--epsilon``, ``--sentence-encoder`` (``resources.sentence_encoder``) and
    ``--max-examples`` (``max_examples``, also the size of the sample). Shorthands a kind has no parameter
    for are ignored, as before kinds existed."""
    params: dict[str, Any] = {}
    for item in args.param:
        keys, value = parse_override(item)
        node = params
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    if "epsilon" in fields and args.epsilon is not None:
        params.setdefault("epsilon", args.epsilon)
    if "resources" in fields and args.sentence_encoder:
        params.setdefault("resources", {})["sentence_encoder"] = args.sentence_encoder
    if "max_examples" in fields:
        params["max_examples"] = args.max_examples
    return params


def _run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from adaptermix.attacks.fgsm import FGSMConfig
    from adaptermix.attacks.resources import judge_note
    from adaptermix.core.errors import ConfigError
    from adaptermix.core.io import (
        atomic_write_json,
        atomic_write_text,
        check_output,
        mark_output,
        output_stamp,
    )
    from adaptermix.evaluations.adapter import evaluate_adapter
    from adaptermix.evaluations.registry import EVALUATION_KINDS

    attacks = [n for n, k in EVALUATION_KINDS.items() if k.adversarial]
    if args.attack not in attacks:
        raise ConfigError(f"unknown attack {args.attack!r}; valid: {', '.join(attacks)}")
    kind = EVALUATION_KINDS.get(args.attack)
    if args.epsilon is None:  # stamped as when the flag's default was FGSM's: earlier outputs stay valid
        args.epsilon = FGSMConfig().epsilon
    stamp = output_stamp("attack", command_inputs(args, skip=("output_dir", "batch_size")))
    check_output(args.output_dir, stamp=stamp, overwrite=args.overwrite)
    params = attack_params(args, set(kind.config.model_fields))
    bars: list[Any] = []

    def tick(done: int, total: int) -> None:  # seconds per example (TextFooler): a bar with an ETA
        if not bars:
            bars.append(tqdm(desc=kind.name, unit="example", total=total))
        bars[0].total = total
        bars[0].update(done - bars[0].n)

    try:
        result = evaluate_adapter(args.adapter, kind.name, params, split=args.split, max_examples=args.max_examples,
                                  data_dir=args.data_dir, batch_size=args.batch_size, precision=args.precision,
                                  progress=tick)
    finally:
        for bar in bars:
            bar.close()
    adapter, es, clean, outcome = result.adapter, result.eval_set, result.clean, result.outcome
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
    if kind.keeps_examples:
        atomic_write_text(out / "examples.md", examples_markdown(outcome.adversarial))
    mark_output(out, stamp)
    m = es.info.metric
    print(f"{args.attack} on {adapter.name} ({len(es.examples)} {args.split} examples): clean {m} "
          f"{clean.metric:.4f} -> under attack {outcome.metric if outcome.metric is None else round(outcome.metric, 4)}")
    print(json.dumps({k: v for k, v in outcome.metrics.items() if not isinstance(v, dict)}, indent=2, default=str))
    if judge is not None and same:
        print(judge_note(str(judge)))
    print(f"wrote {out / 'report.json'}" + (f" and {out / 'examples.md'}" if kind.keeps_examples else ""))
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


register_command(Command("attack", "an attack (TextFooler, FGSM ...) on one adapter or mixture; writes a readable report",
                         _args, _run))
