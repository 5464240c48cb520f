"""The stages of a study after training: FSD, sweeps (clean / attacks), greedy mixing, pruning.

Each stage writes into ``{output_dir}/{method}/`` — ``fsd.json`` and one SQLite ``results.sqlite`` per
method that holds every trial of every stage (distinguished by rule, rule parameters, evaluation and
tag). All sweeps go through :func:`adaptermix.sweep.runner.run_sweep`, so every stage is resumable and
does no work twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adaptermix.artefacts.pool import fsd_summary, load_pool
from adaptermix.backbone.loading import Encoder
from adaptermix.core.errors import ConfigError
from adaptermix.core.io import atomic_write_json
from adaptermix.evaluations.registry import EVALUATION_KINDS
from adaptermix.merging import MERGE_RULES
from adaptermix.methods.config import MethodConfig
from adaptermix.pipeline.config import StudyConfig
from adaptermix.report.plots import fsd_heatmap, save_figure
from adaptermix.sweep.runner import Backend, run_sweep
from adaptermix.sweep.spec import RuleSpec, SweepSpec
from adaptermix.sweep.stats import ALL_DOMAIN


@dataclass
class MethodPool:
    """The adapters of one method in a study: its label and domain -> adapter directory."""

    label: str
    dirs: dict[str, Path]
    replicates: dict[str, tuple[str, Path]] = field(default_factory=dict)  # name -> (domain, dir)

    def out(self, cfg: StudyConfig) -> Path:
        return Path(cfg.output_dir) / self.label

    def store(self, cfg: StudyConfig) -> Path:
        return self.out(cfg) / "results.sqlite"


def write_fsd(cfg: StudyConfig, mp: MethodPool) -> Path:
    """Fig. 4 input: the pool's FSD matrix (raw parameters, Alg. 3) as JSON, plus a heatmap.

    The JSON also holds every pair's FSD by tensor kind and, with noise-floor replicates, each domain's
    floor and the cross-domain excess over it (:func:`adaptermix.artefacts.pool.fsd_summary`).
    """
    pool = load_pool({**mp.dirs, **{name: p for name, (_, p) in mp.replicates.items()}})
    summary = fsd_summary(pool, "raw", {name: d for name, (d, _) in mp.replicates.items()})
    path = mp.out(cfg) / "fsd.json"
    atomic_write_json(path, {**summary, "method": mp.label})
    save_figure(fsd_heatmap(np.asarray(summary["fsd"]), summary["names"], f"FSD (%), {mp.label}"),
                mp.out(cfg) / "fsd")
    return path


def _own_sweep(evaluations: list[str]) -> list[str]:
    """The kinds among ``evaluations`` that run in a sweep of their own (``EvaluationKind.own_sweep``)."""
    return [e for e in evaluations if EVALUATION_KINDS.get(e).own_sweep]


def method_spec(cfg: StudyConfig, mp: MethodPool, **over: Any) -> SweepSpec:
    """The sweep spec of one method pool of a study (its sweep stage's), with fields replaced by ``over``.

    Its evaluations are the stage's, less those that run in a sweep of their own (TextFooler); every
    kind's parameters are the stage's (the kind's defaults where the stage gives none)."""
    sw = cfg.sweep
    own = _own_sweep(sw.evaluations)
    base: dict[str, Any] = {
        "pool": {n: str(p) for n, p in mp.dirs.items()},
        "rules": sw.rules,
        "subsets": _subsets(sw),
        "split": "test",
        "max_eval_examples": sw.max_eval_examples,
        "evaluations": [e for e in sw.evaluations if e not in own] or ["clean"],
        "evaluation_params": sw.evaluation_params,
        "seed": sw.seed,
        "batch_size": sw.batch_size,
        "max_length": cfg.model.max_length,
        "precision": cfg.model.precision,
    }
    if cfg.data.data_dir is not None:
        base["data"] = cfg.data.data_dir
    base.update(over)
    return SweepSpec.model_validate(base)


def _subsets(sw: Any) -> dict[str, Any]:
    """The stage's subset spec: ``all`` / ``sample`` (per_k), or ``adaptive`` (budget, strategy, min_k)."""
    if sw.generator == "adaptive":
        return {"generator": "adaptive", "budget": sw.budget, "strategy": sw.strategy, "min_k": sw.min_k,
                "seed": sw.seed}
    return {"generator": sw.generator, "per_k": sw.per_k, "seed": sw.seed}


def method_config(cfg: StudyConfig, label: str) -> MethodConfig:
    """The method of the study whose directory label is ``label``."""
    for method in cfg.methods:
        if cfg.method_label(method) == label:
            return method
    raise ConfigError(f"no method of the study has the label {label!r}")


@dataclass(frozen=True)
class RulePlan:
    """How a study's rule comparison runs for one method: the rules in the comparison's merge space, the
    LoRA-update rules (on the raw factors), and a note per rule skipped for this method."""

    rules: tuple[RuleSpec, ...]
    lora_rules: tuple[RuleSpec, ...]
    skipped: tuple[str, ...]


def rule_plan(cfg: StudyConfig, method: MethodConfig) -> RulePlan:
    """Split ``rule_comparison.rules`` for ``method`` by what each rule needs (the merging registry's flags);
    a one-line ConfigError for a rule no sweep can run (unknown, a task-vector rule outside ``merge_space:
    tv``, a rank-changing LoRA rule). Checked for every method before training starts."""
    rc = cfg.rule_comparison
    if rc is None:
        return RulePlan((), (), ())
    rules: list[RuleSpec] = []
    lora: list[RuleSpec] = []
    skipped: list[str] = []
    for rule in rc.rules:
        merge_rule = MERGE_RULES.get(rule.name)
        if merge_rule.rank_sum:
            raise ConfigError(f"rule_comparison: merge rule {rule.name!r} changes the LoRA rank (rank = sum of the "
                              "mixed ranks) and cannot run in a sweep")
        if merge_rule.needs_base and rc.merge_space != "tv":
            raise ConfigError(f"rule_comparison: rule {rule.name!r} is defined on task vectors: set "
                              f"rule_comparison.merge_space: tv (it is {rc.merge_space})")
        if not merge_rule.needs_lora:
            rules.append(rule)
        elif method.name == "lora":
            lora.append(rule)
        else:
            skipped.append(f"rule {rule.name!r} merges LoRA updates B A: skipped for method {method.name!r}")
    return RulePlan(tuple(rules), tuple(lora), tuple(skipped))


def rule_comparison_specs(cfg: StudyConfig, mp: MethodPool) -> list[SweepSpec]:
    """The all-domain mixtures (k = N, tag ``all_domain``) of the rule comparison for one method: the
    rules in ``rule_comparison.merge_space``, and the LoRA-update rules (LoRA only) on the raw factors."""
    rc = cfg.rule_comparison
    if rc is None:
        return []
    plan = rule_plan(cfg, method_config(cfg, mp.label))
    subsets = {"generator": "all", "ks": [len(mp.dirs)], "tag": ALL_DOMAIN, "seed": cfg.sweep.seed}
    specs = []
    for rules, space in ((plan.rules, rc.merge_space), (plan.lora_rules, "raw")):
        if rules:
            specs.append(method_spec(cfg, mp, rules=[r.model_dump() for r in rules], subsets=subsets,
                                     evaluations=list(rc.evaluations), merge_space=space))
    return specs


def selection_specs(cfg: StudyConfig, mp: MethodPool) -> list[SweepSpec]:
    """The ``selection`` section's mixtures for one method (greedy stage, beside Alg. 1's): each generator's
    prefixes (AdapterSoup's selections), rule ``average``, ``clean``, as greedy's. A spec of its own, so the
    greedy spec (and a store's record of it) is that of before the section existed."""
    if cfg.selection is None:
        return []
    subsets = {"generator": cfg.selection.generators, "seed": cfg.sweep.seed,
               "adaptersoup": cfg.selection.adaptersoup.model_dump()}
    return [method_spec(cfg, mp, evaluations=["clean"], rules=[{"name": "average"}], subsets=subsets)]


def added_specs(cfg: StudyConfig, mp: MethodPool, stage: str) -> list[SweepSpec]:
    """The specs the additive sections (``rule_comparison`` in the sweep stage, ``selection`` in the greedy
    stage) add to a stage, run after :func:`sweep_specs`'s."""
    if stage == "sweep":
        return rule_comparison_specs(cfg, mp)
    if stage == "greedy":
        return selection_specs(cfg, mp)
    return []


def sweep_specs(cfg: StudyConfig, mp: MethodPool, stage: str) -> list[SweepSpec]:
    """The sweep specs of one stage for one method (possibly none), without the additive sections'
    (:func:`added_specs`): the same for a study with or without them."""
    sw = cfg.sweep
    subsets = _subsets(sw)
    if stage == "sweep":
        specs = [method_spec(cfg, mp)]
        own = _own_sweep(sw.evaluations)
        if own:  # TextFooler: seconds per example, so the average rule only, on a sample if asked
            own_subsets = dict(subsets)
            if sw.textfooler_per_k is not None:
                own_subsets.update(generator="sample", per_k=sw.textfooler_per_k)
            specs.append(method_spec(cfg, mp, evaluations=own, subsets=own_subsets, rules=[{"name": "average"}]))
        return specs
    if stage == "greedy":
        return [method_spec(cfg, mp, evaluations=["clean"], rules=[{"name": "average"}],
                      subsets={"generator": ["greedy", "greedy_max"], "seed": sw.seed})] if cfg.greedy else []
    if stage == "pruning":
        pr = cfg.pruning
        if not pr.enabled:
            return []
        # Fig. 8a: each single adapter pruned as a whole (scope "adapter", the paper's top-d %) and/or per
        # layer; Fig. 8b: mixtures of sparse adapters with every layer pruned (m unset) and, when
        # fsd_layers is set, Alg. 4 proper (only the m most conflicting layers): each its own setting.
        single = [{"name": "sparse_fsd", "params": {"s": s, "scope": sc}} for sc in pr.scopes for s in pr.sparsities]
        variants: list[dict[str, int]] = [{}] + ([{"m": pr.fsd_layers}] if pr.fsd_layers is not None else [])
        mixed = [{"name": "sparse_fsd", "params": {"s": s, **v}} for v in variants for s in pr.mix_sparsities]
        return [
            # the single sparse adapters are k = 1 only: enumerate them, whatever the study's generator
            method_spec(cfg, mp, evaluations=["clean"], rules=single, subsets={"generator": "all", "ks": [1]}),
            method_spec(cfg, mp, evaluations=["clean"], rules=mixed, subsets=subsets),
        ]
    raise ValueError(stage)


def run_sweep_stage(
    cfg: StudyConfig, mp: MethodPool, stage: str, encoder: Encoder | None, backend: Backend | None = None,
    progress: bool = True, log: Callable[[str], None] = print,
) -> int:
    """Run every spec of ``stage`` for one method into its store; returns the number of trials run."""
    ran = 0
    if stage == "sweep" and cfg.rule_comparison is not None:
        for note in rule_plan(cfg, method_config(cfg, mp.label)).skipped:
            log(f"[{mp.label}] rule comparison: {note}")
    for spec in [*sweep_specs(cfg, mp, stage), *added_specs(cfg, mp, stage)]:
        summary = run_sweep(spec, mp.store(cfg), encoder=encoder, progress=progress, backend=backend)
        log(f"[{mp.label}] {stage}: {summary.ran} trials run, {summary.skipped} already done")
        ran += summary.ran
    return ran


def set_aside_stale_store(cfg: StudyConfig, mp: MethodPool, log: Callable[[str], None]) -> None:
    """A study whose adapters were retrained (a changed config, recipe or data) keeps its old store under
    another name and starts a new one: the old results belong to the old weights, and a user's work is
    never deleted. Said in one line."""
    from datetime import datetime, timezone

    from adaptermix.artefacts.artefact import load_adapter
    from adaptermix.sweep.store import ResultsStore

    path = mp.store(cfg)
    if not path.is_file():
        return
    hashes = {name: load_adapter(p).weights_sha256() for name, p in mp.dirs.items()}
    with ResultsStore(path) as store:
        stale = store.stale_adapters(hashes)
        if not store.adapter_hashes():  # a store from before weights were recorded: judge by the dates
            created = store.created_at()
            stale = [] if created is None else sorted(
                n for n, p in mp.dirs.items()
                if datetime.fromtimestamp((Path(p) / "adapter.safetensors").stat().st_mtime, timezone.utc) > created
            )
    if not stale:
        return
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.stem}.stale-{stamp}{path.suffix}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            os.replace(src, f"{aside}{suffix}")
    log(f"[{mp.label}] adapters {', '.join(stale)} were retrained since {path} was written: "
        f"kept it as {aside.name}, starting a new store")
