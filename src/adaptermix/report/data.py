"""Read a study's outputs for the report (read-only): results stores, statistics, FSD, analyses, adapters.

Nothing here computes a mixture or a metric: the report only reads what the pipeline stored. The
statistics are :func:`adaptermix.sweep.stats.compute_stats`'s tables; this module only selects the rows
of one setting (evaluation x rule x rule parameters) out of them, using the very labels
``compute_stats`` gives its settings.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptermix.evaluations.registry import report_order
from adaptermix.sweep.stats import (
    CorrelationRow,
    DropRow,
    GreedyRow,
    KStats,
    RuleRow,
    SelectionRow,
    SettingKey,
    SoupChoiceRow,
    SweepStats,
    compute_stats,
    setting_key,
    setting_labels,  # the labels compute_stats gives its settings (to select a setting's rows)
)
from adaptermix.sweep.store import ResultsStore, TrialRecord
from adaptermix.training.metrics import BASELINE_PREFIX, is_near

# Evaluation kinds are shown in the registry's order with its labels and colours
# (adaptermix.evaluations.registry: report_order, label_of, colour_of); a kind found in a store but not
# registered is shown too, after them, labelled by its name.
STORE_NAME = "results.sqlite"
FSD_NAME = "fsd.json"
_NOT_METHODS = {"adapters", "analysis", "report"}


#: Pruning variants, told apart by their ``sparse_fsd`` parameters. Fig. 8a: "adapter" keeps the top
#: (1 - s) of all of an adapter's parameters (the paper), "layer" prunes every layer to s on its own (stores
#: written before ``scope`` existed hold only this one). Fig. 8b: "every_layer" prunes all layers of every
#: mixed adapter; "fsd_guided" is Alg. 4 proper, only the m most conflicting layers (``m`` set).
SPARSE_VARIANTS: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "adapter": lambda p: p.get("scope") == "adapter" and p.get("m") is None,
    "layer": lambda p: p.get("scope", "layer") == "layer" and p.get("m") is None,
    "every_layer": lambda p: p.get("scope", "layer") == "layer" and p.get("m") is None,
    "fsd_guided": lambda p: p.get("m") is not None,
}
SPARSE_LABELS = {
    "adapter": "whole adapter (top-d %)",
    "layer": "per layer",
    "every_layer": "every layer pruned",
    "fsd_guided": "FSD-guided, m most conflicting layers (Alg. 4)",
}


@dataclass(frozen=True)
class Setting:
    """What a ``compute_stats`` setting label stands for."""

    label: str
    evaluation: str
    rule: str
    rule_params: Mapping[str, Any]
    n_rows: int

    def matches(self, evaluation: str | None, rule: str, params: Mapping[str, Any] | None) -> bool:
        """Same evaluation (any if None) and rule, and every given rule parameter equal."""
        return (
            (evaluation is None or self.evaluation == evaluation)
            and self.rule == rule
            and all(self.rule_params.get(k) == v for k, v in (params or {}).items())
        )


@dataclass
class MethodData:
    """Everything the report shows for one adapter method of a study."""

    label: str
    rows: list[TrialRecord]  # the store's trials with a metric, as stored
    stats: SweepStats
    settings: dict[str, Setting]
    fsd: dict[str, Any] | None = None
    adversarial: list[dict[str, Any]] = field(default_factory=list)
    provenance: list[dict[str, Any]] = field(default_factory=list)
    #: setting (:func:`adaptermix.sweep.stats.setting_key`) -> its label; derived from ``rows`` when not given
    labels: dict[SettingKey, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.labels:
            self.labels = setting_labels(setting_key(r) for r in self.rows)

    def label_of(self, row: Mapping[str, Any]) -> str:
        """The label of a stored trial's setting (as in :attr:`settings` and the statistics tables)."""
        return self.labels[setting_key(row)]

    # -- selecting one setting ------------------------------------------------------------------------

    def setting(
        self, evaluation: str | None, rule: str = "average", params: Mapping[str, Any] | None = None
    ) -> str | None:
        """The label of the matching setting with the most trials (None if nothing matches)."""
        found = [s for s in self.settings.values() if s.matches(evaluation, rule, params)]
        return max(found, key=lambda s: (s.n_rows, s.label)).label if found else None

    def per_k(
        self, evaluation: str, rule: str = "average", params: Mapping[str, Any] | None = None
    ) -> list[KStats]:
        label = self.setting(evaluation, rule, params)
        return [s for s in self.stats.per_k if s.setting == label]

    def population(
        self, evaluation: str = "clean", rule: str = "average", params: Mapping[str, Any] | None = None
    ) -> list[TrialRecord]:
        """The setting's population trials (tag ``""``), as store rows."""
        label = self.setting(evaluation, rule, params)
        return [r for r in self.rows if r["tag"] == "" and self.label_of(r) == label]

    def drops(self, rule: str = "average") -> dict[str, list[DropRow]]:
        """Evaluation -> Table 1 rows of that evaluation's setting."""
        return self._by_eval(self.stats.drops, rule)

    def correlations(self, rule: str = "average") -> dict[str, list[CorrelationRow]]:
        return self._by_eval(self.stats.correlations, rule)

    def greedy(self, evaluation: str = "clean", rule: str = "average") -> list[GreedyRow]:
        label = self.setting(evaluation, rule)
        return [g for g in self.stats.greedy if g.setting == label]

    def selection_wins(self, evaluation: str = "clean", rule: str = "average") -> list[SelectionRow]:
        """Per target and l: which selection (greedy, AdapterSoup, random) wins, for one setting."""
        label = self.setting(evaluation, rule)
        return [r for r in self.stats.selections if r.setting == label]

    def rules(self, evaluation: str = "clean") -> list[RuleRow]:
        """"Which rule?" rows of one evaluation (empty unless the store holds two rules or more at k = N)."""
        return [r for r in self.stats.rules if r.evaluation == evaluation]

    def soup_choices(self) -> list[SoupChoiceRow]:
        """The selections AdapterSoup's generators recorded in the store."""
        return list(self.stats.adaptersoup)

    @property
    def evaluations(self) -> list[str]:
        """The evaluation kinds of the stored trials, in report order (unregistered kinds included)."""
        return report_order(s.evaluation for s in self.settings.values())

    def per_k_by_eval(self, rule: str = "average") -> dict[str, list[KStats]]:
        return {e: rows for e in self.evaluations if (rows := self.per_k(e, rule))}

    def _by_eval(self, table: Sequence[Any], rule: str) -> dict[str, list[Any]]:
        out = {}
        for evaluation in self.evaluations:
            label = self.setting(evaluation, rule)
            rows = [r for r in table if r.setting == label]
            if rows:
                out[evaluation] = rows
        return out

    def sparsities(self, rule: str = "sparse_fsd") -> list[float]:
        """The sparsity levels ``s`` of the stored pruning trials, ascending."""
        return sorted(
            {
                float(s.rule_params["s"])
                for s in self.settings.values()
                if s.rule == rule and "s" in s.rule_params
            }
        )

    def sparse_per_k(self, variant: str) -> dict[float, list[KStats]]:
        """Sparsity -> the clean per-k rows of one pruning variant (see :data:`SPARSE_VARIANTS`): for each
        ``s``, the matching ``sparse_fsd`` setting with the most trials."""
        keep = SPARSE_VARIANTS[variant]
        out: dict[float, list[KStats]] = {}
        for s in self.sparsities():
            found = [
                st
                for st in self.settings.values()
                if st.evaluation == "clean"
                and st.rule == "sparse_fsd"
                and float(st.rule_params.get("s", -1)) == s
                and keep(st.rule_params)
            ]
            if found:
                label = max(found, key=lambda st: (st.n_rows, st.label)).label
                out[s] = [r for r in self.stats.per_k if r.setting == label]
        return out

    def textfooler_judges(self) -> dict[str, bool]:
        """TextFooler's sentence-similarity encoder(s) recorded with the trials -> whether it is the victim's
        own backbone (empty for stores written before the judge was recorded)."""
        out: dict[str, bool] = {}
        for r in self.rows:
            if r["evaluation"] == "textfooler":
                m = json.loads(r["metrics_json"] or "{}")
                if m.get("sentence_encoder"):
                    judge = str(m["sentence_encoder"])
                    out[judge] = out.get(judge, False) or bool(m.get("sentence_encoder_is_victim_backbone"))
        return out

    @property
    def has_trials(self) -> bool:
        return bool(self.rows)


@dataclass
class StudyData:
    """A whole study directory, loaded."""

    root: Path
    name: str
    config_text: str | None
    methods: list[MethodData]
    similarity: dict[str, Any] | None
    topics: dict[str, Any] | None
    single: dict[str, dict[str, tuple[str, float | None]]]  # method -> domain -> (metric, test value)
    #: method -> domain -> the constant-prediction (majority class / training mean) baseline of the headline
    #: test metric; None where the artefact predates stored baselines.
    baselines: dict[str, dict[str, float | None]] = field(default_factory=dict)
    excluded_near_baseline: bool = False  # whether near-baseline targets were left out of the statistics

    def near_baseline(self, method: str) -> list[str]:
        """Domains whose ``method`` adapter is within ``NEAR_BASELINE_PP`` (2) points of its
        baseline (or below it): findings computed on those targets measure little."""
        out = []
        for domain, (_, value) in sorted(self.single.get(method, {}).items()):
            base = self.baselines.get(method, {}).get(domain)
            if value is not None and base is not None and is_near(value, base):
                out.append(domain)
        return out


# ------------------------------------------------------------------------------------------ loading


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def settings_of(rows: Sequence[Mapping[str, Any]]) -> tuple[dict[SettingKey, str], dict[str, Setting]]:
    """(setting tuple -> label, label -> :class:`Setting`) for store rows with a metric."""
    counts = Counter(setting_key(r) for r in rows)
    labels = setting_labels(counts)
    settings = {
        label: Setting(label, key[0], key[2], json.loads(key[3]), counts[key])
        for key, label in labels.items()
    }
    return labels, settings


def adversarial_sample(
    store: ResultsStore, trials: Mapping[str, Mapping[str, Any]], n: int = 8, seed: int = 0
) -> list[dict[str, Any]]:
    """A seeded sample of at most ``n`` stored adversarial examples, successful attacks first."""
    examples = [
        {**ex, **{k: trials[ex["trial_key"]][k] for k in ("target", "k", "subset_json")}}
        for ex in store.rows("adversarial_examples")
        if ex["trial_key"] in trials
    ]
    rng = random.Random(seed)
    ok = [e for e in examples if e["success"]]
    rest = [e for e in examples if not e["success"]]
    picked = rng.sample(ok, min(n, len(ok)))
    picked += rng.sample(rest, min(n - len(picked), len(rest)))
    return sorted(picked, key=lambda e: (e["target"], e["k"], e["trial_key"], e["idx"]))


def load_method(method_dir: Path, exclude_targets: Collection[str] = ()) -> MethodData:
    """One method's results store (if any), statistics and FSD matrix; trials whose target is in
    ``exclude_targets`` are left out of everything (rows and statistics)."""
    store_path = method_dir / STORE_NAME
    raw: list[TrialRecord] = []
    adversarial: list[dict[str, Any]] = []
    provenance: list[dict[str, Any]] = []
    stats = SweepStats([], [], [], [])
    if store_path.is_file():
        with ResultsStore(store_path, readonly=True) as store:
            # The pipeline has finished writing when the report is built, so these reads agree.
            raw = [r for r in store.trials() if r["target"] not in exclude_targets]
            selections = {k: v for k, v in store.selections().items() if k[1] not in exclude_targets}
            stats = compute_stats(raw, selections)
            provenance = store.rows("provenance")
            adversarial = adversarial_sample(store, {r["key"]: r for r in raw})
    rows = [r for r in raw if r["metric"] is not None]
    labels, settings = settings_of(rows)
    return MethodData(
        method_dir.name, rows, stats, settings, _read_json(method_dir / FSD_NAME), adversarial, provenance,
        labels,
    )


def single_adapters(root: Path) -> dict[str, dict[str, tuple[str, float | None]]]:
    """method -> domain -> (headline metric, test value) from each ``adapter.json``."""
    return {m: {d: (metric, value) for d, (metric, value, _) in per.items()} for m, per in _singles(root).items()}


def single_baselines(root: Path) -> dict[str, dict[str, float | None]]:
    """method -> domain -> the stored constant-prediction baseline of the headline test metric (None for
    artefacts written before baselines were stored)."""
    return {m: {d: base for d, (_, _, base) in per.items()} for m, per in _singles(root).items()}


def _singles(root: Path) -> dict[str, dict[str, tuple[str, float | None, float | None]]]:
    out: dict[str, dict[str, tuple[str, float | None, float | None]]] = {}
    for meta_path in sorted((root / "adapters").glob("*/*/adapter.json")):
        meta = _read_json(meta_path) or {}
        metric = str((meta.get("task") or {}).get("metric", "accuracy"))
        test = (meta.get("metrics") or {}).get("test") or {}
        value, base = test.get(metric), test.get(f"{BASELINE_PREFIX}{metric}")
        method, domain = meta_path.parent.parent.name, meta_path.parent.name
        out.setdefault(method, {})[domain] = (
            metric,
            None if value is None else float(value),
            None if base is None else float(base),
        )
    return out


def load_study(root: str | Path, exclude_near_baseline: bool = False) -> StudyData:
    """Load every input the report reads from a study directory (missing parts are None / empty).

    ``exclude_near_baseline`` leaves out of a method's statistics every trial whose target adapter is
    within :data:`NEAR_BASELINE_PP` points of its constant-prediction baseline (see
    :meth:`StudyData.near_baseline`): mixing an adapter that learnt nothing can lose nothing.
    """
    root = Path(root)
    config_path = root / "config.yaml"
    config_text = config_path.read_text(encoding="utf-8") if config_path.is_file() else None
    name = root.name
    if config_text:
        import yaml

        try:
            name = str((yaml.safe_load(config_text) or {}).get("name", name))
        except yaml.YAMLError:
            pass
    method_dirs = (
        sorted(
            d
            for d in root.iterdir()
            if d.is_dir()
            and d.name not in _NOT_METHODS
            and ((d / STORE_NAME).is_file() or (d / FSD_NAME).is_file())
        )
        if root.is_dir()
        else []
    )
    study = StudyData(
        root,
        name,
        config_text,
        [],
        _read_json(root / "analysis" / "similarity.json"),
        _read_json(root / "analysis" / "topics.json"),
        single_adapters(root),
        single_baselines(root),
        exclude_near_baseline,
    )
    study.methods = [
        load_method(d, study.near_baseline(d.name) if exclude_near_baseline else ()) for d in method_dirs
    ]
    return study
