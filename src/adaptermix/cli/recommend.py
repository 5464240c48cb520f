"""``adaptermix predict`` and ``adaptermix recommend``: which adapters to mix, with a tenth of the evaluations."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import adaptermix as am
from adaptermix.cli.base import (
    EVALUATION_NAMES,
    PREDICTOR_MODELS,
    STRATEGY_NAMES,
    Command,
    Listed,
    add_overwrite,
    add_precision,
    command_inputs,
    register_command,
)
from adaptermix.core.errors import ArtefactError, ConfigError
from adaptermix.core.io import atomic_write_json, check_output, mark_output, output_stamp


def _predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="results store (results.sqlite) or a study's method folder, e.g. results/demo/pfeiffer")
    p.add_argument("--evaluation", default="clean", action=Listed, names=EVALUATION_NAMES,
                   help="which evaluation's metric to predict: %(names)s (default clean)")
    p.add_argument("--rule", action="append", help="only these rules (repeatable; default: every rule in the store)")
    p.add_argument("--folds", type=int, default=5, help="K of the held-out K-fold within targets (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--alpha", type=float, default=3.0, help="ridge penalty on standardised features (default 3)")
    p.add_argument("--model", default="ridge", choices=PREDICTOR_MODELS, metavar="MODEL",
                   help="%(choices)s: ridge (default; signed coefficients) or trees (extra-trees; importances)")
    p.add_argument("-o", "--output-dir", help="write predictor.json and the predicted-vs-measured plot here")
    add_overwrite(p)


def _predict_run(args: argparse.Namespace) -> int:
    from adaptermix.recommend.predictor import format_report

    data = am.predictor_data(args.store, args.evaluation, args.rule)
    db = Path(args.store) / "results.sqlite" if Path(args.store).is_dir() else Path(args.store)
    stamp = output_stamp("predict", command_inputs(args, skip=("output_dir",)))
    if args.output_dir:
        check_output(args.output_dir, stamp=stamp, overwrite=args.overwrite)
    report = am.predict(data, folds=args.folds, seed=args.seed, model=args.model, alpha=args.alpha)
    print(format_report(report))
    if args.output_dir:
        from adaptermix.recommend.plots import predicted_vs_measured

        out = Path(args.output_dir)
        atomic_write_json(out / "predictor.json", {"store": str(db), "evaluation": args.evaluation,
                                                   "rules": args.rule, **report.as_dict()})
        written = predicted_vs_measured(data, report, out / "predicted_vs_measured")
        mark_output(out, stamp)
        print(f"wrote {out / 'predictor.json'}, " + ", ".join(str(w) for w in written))
    return 0


def _rule_spec(text: str) -> dict[str, Any]:
    """``NAME`` or ``NAME:{json params}`` -> a rule spec dict."""
    name, _, params = text.partition(":")
    try:
        return {"name": name, "params": json.loads(params) if params else {}}
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--rule {text!r}: the parameters after ':' must be JSON ({exc.msg})") from None


def _recommend_args(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("the pool (a study, or adapters and a store)")
    src.add_argument("--study", help="a study's output folder (its config, adapters and results store)")
    src.add_argument("--method", help="the study's method label (default: its only method)")
    src.add_argument("--pool", nargs="+", help="adapter directories (without --study)")
    src.add_argument("--store", help="results store to read and write (with --study: instead of the study's own "
                     "store, whose statistics would otherwise include the search's mixtures)")
    p.add_argument("--target", required=True, help="the domain the mixture is for")
    p.add_argument("--budget", type=int, required=True, help="most evaluations, the single adapter's included")
    p.add_argument("--strategy", default="model", action=Listed, names=STRATEGY_NAMES,
                   help="search strategy: %(names)s (default model, predictor-guided)")
    p.add_argument("--min-k", type=int, default=1,
                   help="smallest mixture to recommend (2: the best mixture that really mixes)")
    p.add_argument("--evaluation", default="clean", action=Listed, names=EVALUATION_NAMES,
                   help="what to maximise: an evaluation kind, %(names)s (`adaptermix list evaluations`; "
                        "default clean)")
    p.add_argument("--rule", action="append",
                   help="rule to consider, NAME or NAME:{json} (repeatable; default average)")
    p.add_argument("--no-prior", action="store_true",
                   help="do not learn from the other targets' mixtures already in the store")
    p.add_argument("--similarity", action="store_true",
                   help="embed training texts for the dataset similarity (needed by adaptersoup without a "
                        "study's analysis/similarity.json)")
    p.add_argument("--max-eval-examples", type=int, help="evaluation cap (default: the study's, else none)")
    p.add_argument("--max-length", type=int, help="tokens (default: the study's, else the adapter's)")
    p.add_argument("--data", help="data pack the adapters were trained on (default: as recorded)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output-dir", help="write the recommended mixture as an adapter here")
    p.add_argument("--json", dest="json_out", help="write the search (what was tried) as JSON here")
    add_precision(p)
    add_overwrite(p)


def _study_spec(args: argparse.Namespace, rules: list[dict[str, Any]]) -> tuple[Any, Path, Path | None]:
    """Sweep spec, store and similarity.json of a study's method pool (as its sweep stage builds them)."""
    from adaptermix.core.config import load_config
    from adaptermix.pipeline.config import StudyConfig
    from adaptermix.pipeline.stages import MethodPool, method_spec
    from adaptermix.pipeline.train_stage import adapter_dir

    study = Path(args.study)
    if not (study / "config.yaml").is_file():
        raise ArtefactError(f"{study} is not a study folder (no config.yaml)")
    cfg = load_config(StudyConfig, study / "config.yaml", [f"output_dir={study}"])
    labels = [cfg.method_label(m) for m in cfg.methods]
    label = args.method or (labels[0] if len(labels) == 1 else None)
    if label not in labels:
        raise ConfigError(f"--method: choose one of {', '.join(labels)}")
    dirs = {d: adapter_dir(cfg, label, d) for d in cfg.domain_names()}
    missing = [d for d, p in dirs.items() if not (p / "adapter.json").is_file()]
    if missing:
        raise ArtefactError(f"the study has no trained {label} adapter for {missing[0]!r} (run its train stage)")
    mp = MethodPool(label, dirs)
    over: dict[str, Any] = {"evaluations": [args.evaluation], "rules": rules,
                            "subsets": {"generator": "all"}}
    if args.max_eval_examples:
        over["max_eval_examples"] = args.max_eval_examples
    if args.max_length:
        over["max_length"] = args.max_length
    if args.precision:
        over["precision"] = args.precision
    sim = study / "analysis" / "similarity.json"
    store = Path(args.store) if args.store else mp.store(cfg)
    return method_spec(cfg, mp, **over), store, sim if sim.is_file() else None


def _pool_spec(args: argparse.Namespace, rules: list[dict[str, Any]]) -> tuple[Any, Path, None]:
    from adaptermix.sweep.spec import SweepSpec

    if not args.pool or not args.store:
        raise ConfigError("give --study DIR, or --pool DIR... and --store FILE")
    spec = SweepSpec.model_validate({
        "pool": list(args.pool), "rules": rules, "evaluations": [args.evaluation],
        "max_eval_examples": args.max_eval_examples, "max_length": args.max_length, "data": args.data,
        "seed": args.seed, "precision": args.precision,
    })
    return spec, Path(args.store), None


def _check_search_args(args: argparse.Namespace) -> None:
    """One-line errors for bad search arguments before any model, store or output is touched."""
    from adaptermix.evaluations.registry import EVALUATION_KINDS
    from adaptermix.recommend.search import STRATEGIES

    if args.budget < 1:
        raise ConfigError("--budget must be at least 1 (the single adapter's evaluation)")
    STRATEGIES.get(args.strategy)
    EVALUATION_KINDS.get(args.evaluation)


def _recommend_run(args: argparse.Namespace) -> int:
    stamp = output_stamp("recommend", command_inputs(args, skip=("output_dir", "json_out")))
    if args.output_dir:
        check_output(args.output_dir, stamp=stamp, overwrite=args.overwrite)
    if args.study and args.pool:
        raise ConfigError("give --study or --pool, not both")
    _check_search_args(args)
    rules = [_rule_spec(r) for r in (args.rule or ["average"])]
    spec, store, sim_json = _study_spec(args, rules) if args.study else _pool_spec(args, rules)
    names = list(spec.pool_dirs())
    if args.target not in names:
        raise ConfigError(f"--target {args.target!r} is not in the pool ({', '.join(names)})")
    if not 1 <= args.min_k <= len(names):
        raise ConfigError(f"--min-k must be between 1 and the pool size ({len(names)})")
    result = am.recommend_mixture(spec, store, args.target, args.budget, strategy=args.strategy,
                                  min_k=args.min_k, evaluation=args.evaluation, rules=rules, seed=args.seed,
                                  use_prior=not args.no_prior,
                                  similarity=sim_json if sim_json is not None else args.similarity, progress=True)
    new, reused = result.new_evaluations, result.reused_evaluations
    best = result.best
    print(f"\n{args.strategy} search for {args.target}: {len(result.steps)} of {args.budget} evaluations "
          f"({new} run, {reused} read from {store}); {result.candidates} candidates in all")
    for i, s in enumerate(result.steps, 1):
        print(f"  {i:3d}. {s.metric:.4f}  {s.candidate.describe():60s} {s.why}")
    print(f"\nrecommended: {best.candidate.describe()} -> {best.metric:.4f} "
          f"(the {args.target} adapter alone: {result.single:.4f}, {(best.metric - result.single) * 100:+.1f} pts)")
    if args.json_out:
        atomic_write_json(Path(args.json_out), {**result.as_dict(), "new_evaluations": new,
                                                "reused_evaluations": reused, "store": str(store)})
    if args.output_dir:
        from adaptermix.artefacts.artefact import save_adapter

        dirs = spec.pool_dirs()
        pool = am.load_pool({n: dirs[n] for n in best.candidate.subset})
        mixed = am.mix(pool, best.candidate.rule, args.target, **dict(best.candidate.rule_params))
        path = save_adapter(args.output_dir, mixed.tensors, mixed.meta)
        mark_output(path, stamp)
        print(f"wrote {path}")
    return 0


register_command(Command("predict", "fit the mixture-quality predictor on a store; report held-out accuracy",
                         _predict_args, _predict_run))
register_command(Command("recommend", "the best mixture for a target within a budget of evaluations",
                         _recommend_args, _recommend_run))
