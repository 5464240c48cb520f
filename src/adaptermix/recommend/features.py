"""What is known about a mixture before it is evaluated: the features of the mixture-quality predictor.

A candidate mixture is (target, subset, rule spec). Its features are computed from the pool alone — the
FSD matrix (Alg. 3), the target's sign change under the mixture (from the weights), the dataset similarity
of Fig. 2a — plus one measured number, the target's single-adapter metric (k = 1), which every search
evaluates first. The predictor's response is the *change* from that single adapter, in points
(``metric - single``): targets differ in scale (MCC, F1, accuracy), and the paper's question is how much a
mixture loses against the target's own adapter.

Features never include anything measured on the candidate itself; :mod:`adaptermix.recommend.predictor`
tests that a held-out mixture's own measurement cannot reach the fit.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adaptermix.core.errors import ArtefactError, ConfigError
from adaptermix.sweep.spec import canonical_json

#: Features of every candidate, in column order. ``sign`` features are the paper's hypothesis (FSD and the
#: target's sign change); the ablations of :func:`adaptermix.recommend.predictor.evaluate_predictor` drop them.
BASE_FEATURES = ("k", "inv_k", "single")
SIGN_FEATURES = ("mean_fsd_to_target", "max_fsd_to_target", "mean_pairwise_fsd", "target_sign_change")
SIMILARITY_FEATURES = ("mean_similarity_to_target", "min_similarity_to_target")
FEATURES = BASE_FEATURES + SIGN_FEATURES + SIMILARITY_FEATURES


@dataclass(frozen=True, eq=False)
class Candidate:
    """One mixture a search may evaluate: the target, the adapters averaged, and the rule with its params.

    Identity (``==``, ``hash``) is :attr:`key`."""

    target: str
    subset: tuple[str, ...]
    rule: str = "average"
    rule_params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        subset = tuple(sorted(set(self.subset)))
        if self.target not in subset or len(subset) != len(self.subset):
            raise ConfigError(f"a candidate's subset {self.subset} must hold distinct names including {self.target!r}")
        object.__setattr__(self, "subset", subset)
        object.__setattr__(self, "rule_params", dict(self.rule_params))

    @property
    def k(self) -> int:
        return len(self.subset)

    @property
    def rule_label(self) -> str:
        """``rule`` or ``rule{params}``: one column of the predictor's rule indicator."""
        return self.rule if not self.rule_params else f"{self.rule}{canonical_json(dict(self.rule_params))}"

    @property
    def key(self) -> str:
        """Identity of the mixture (target, subset, rule, params), as the sweep runner groups trials."""
        return canonical_json([self.target, list(self.subset), self.rule, dict(self.rule_params)])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Candidate) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def describe(self) -> str:
        others = [n for n in self.subset if n != self.target]
        return f"{self.target} + {{{', '.join(others)}}} ({self.rule_label})" if others else \
            f"{self.target} alone ({self.rule_label})"


@dataclass(frozen=True)
class PoolFacts:
    """Evaluation-free facts about a pool: names, the FSD matrix, optionally dataset similarity (Fig. 2a)."""

    names: tuple[str, ...]
    fsd: np.ndarray
    similarity: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.names)
        if self.fsd.shape != (n, n):
            raise ConfigError(f"the FSD matrix is {self.fsd.shape}, the pool has {n} adapters")
        if self.similarity is not None and self.similarity.shape != (n, n):
            raise ConfigError(f"the similarity matrix is {self.similarity.shape}, the pool has {n} adapters")

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise ConfigError(f"{name!r} is not in the pool ({', '.join(self.names)})") from None

    def subset_for(self, names: Sequence[str]) -> PoolFacts:
        """The facts restricted to ``names`` (in that order)."""
        idx = [self.index(n) for n in names]
        sim = None if self.similarity is None else self.similarity[np.ix_(idx, idx)]
        return PoolFacts(tuple(names), self.fsd[np.ix_(idx, idx)], sim)


def candidate_features(
    c: Candidate, facts: PoolFacts, single: float, target_sign_change: float | None
) -> dict[str, float]:
    """The feature row of one candidate (see :data:`FEATURES`); ``single`` is the target's k = 1 metric.

    ``target_sign_change`` is the fraction of the target's weights whose sign the mixture flips (computed
    from the weights; ``None`` -> 0 for k = 1, else NaN, which the predictor imputes). Without a similarity
    matrix the similarity features are 0.
    """
    t = facts.index(c.target)
    others = [facts.index(n) for n in c.subset if n != c.target]
    idx = [t, *others]
    to_target = facts.fsd[t, others] if others else np.zeros(1)
    if len(idx) > 1:
        sub = facts.fsd[np.ix_(idx, idx)]
        pairwise = float(sub[np.triu_indices(len(idx), 1)].mean())
    else:
        pairwise = 0.0
    if facts.similarity is not None and others:
        sim = facts.similarity[t, others]
        mean_sim, min_sim = float(sim.mean()), float(sim.min())
    else:
        mean_sim = min_sim = 0.0
    tsc = 0.0 if not others else (float("nan") if target_sign_change is None else float(target_sign_change))
    return {
        "k": float(c.k),
        "inv_k": 1.0 / c.k,
        "single": float(single),
        "mean_fsd_to_target": float(to_target.mean()),
        "max_fsd_to_target": float(to_target.max()),
        "mean_pairwise_fsd": pairwise,
        "target_sign_change": tsc,
        "mean_similarity_to_target": mean_sim,
        "min_similarity_to_target": min_sim,
    }


# ------------------------------------------------------------------------------------------ store tables


@dataclass(frozen=True)
class Measured:
    """One measured mixture of a store: the candidate, its metric and its recorded sign change."""

    candidate: Candidate
    metric: float
    target_sign_change: float | None


def read_measured(
    store: str | Path, evaluation: str = "clean", rules: Sequence[str] | None = None
) -> list[Measured]:
    """Every distinct mixture of one evaluation in a results store (read-only; first row per mixture).

    The same mixture can sit in a store several times under different tags (the greedy generators tag
    their trials): its measurement is the same evaluation of the same weights on the same examples, so it
    is counted once. ``rules`` keeps only those rule names.
    """
    from adaptermix.sweep.store import ResultsStore

    path = Path(store)
    if not path.is_file():
        raise ArtefactError(f"{path}: no results store there")
    try:
        with ResultsStore(path, readonly=True) as s:
            rows = s.rows()
    except sqlite3.Error as exc:  # pragma: no cover - ResultsStore turns these into ArtefactError
        raise ArtefactError(f"{path}: {exc}") from None
    seen: dict[str, Measured] = {}
    for row in rows:
        trial = json.loads(row["trial_json"])
        if trial["evaluation"] != evaluation or row["metric"] is None:
            continue
        if rules is not None and trial["rule"] not in rules:
            continue
        c = Candidate(trial["target"], tuple(trial["subset"]), trial["rule"], trial.get("rule_params") or {})
        if c.key not in seen:
            seen[c.key] = Measured(c, float(row["metric"]), row["target_sign_change"])
    if not seen:
        raise ArtefactError(f"{path}: no {evaluation!r} trials" + (f" of rules {list(rules)}" if rules else ""))
    return list(seen.values())


def singles(measured: Sequence[Measured]) -> dict[str, float]:
    """target -> the metric of the target's own adapter alone (k = 1, rule ``average``)."""
    return {m.candidate.target: m.metric for m in measured if m.candidate.k == 1 and m.candidate.rule == "average"}


def read_pool_facts(study_or_method_dir: str | Path, names: Sequence[str] | None = None) -> PoolFacts:
    """FSD (``fsd.json`` beside the store) and, when the study has it, the similarity of Fig. 2a
    (``analysis/similarity.json`` one folder up), restricted to ``names``."""
    d = Path(study_or_method_dir)
    fsd_path = d / "fsd.json"
    if not fsd_path.is_file():
        raise ArtefactError(f"{fsd_path}: missing (run `adaptermix fsd` or the study's fsd stage)")
    data = json.loads(fsd_path.read_text(encoding="utf-8"))
    facts = PoolFacts(tuple(data["names"]), np.asarray(data["fsd"], dtype=np.float64))
    sim_path = d.parent / "analysis" / "similarity.json"
    if sim_path.is_file():
        facts = read_similarity(facts, sim_path)
    return facts.subset_for(names) if names is not None else facts


def partner_columns(names: Sequence[str]) -> list[str]:
    """Indicator columns of *which* adapters a mixture holds: ``with=j`` (j is a partner, for any target)
    and ``pair=t:j`` (j is a partner of target t). They let the predictor learn additive partner effects
    from a target's measured mixtures — the ablation shows how much of the prediction they carry."""
    return [f"with={j}" for j in names] + [f"pair={t}:{j}" for t in names for j in names if j != t]


def feature_row(
    c: Candidate, facts: PoolFacts, single_metrics: Mapping[str, float], tsc: float | None,
    rule_labels: Sequence[str] = (),
) -> list[float]:
    """One row of :func:`feature_matrix` (the target's single metric must be known)."""
    if c.target not in single_metrics:
        raise ConfigError(f"the single-adapter metric of {c.target!r} is unknown (evaluate k = 1 first)")
    f = candidate_features(c, facts, single_metrics[c.target], tsc)
    partners = set(c.subset) - {c.target}
    return ([f[name] for name in FEATURES] + [1.0 if c.rule_label == r else 0.0 for r in rule_labels]
            + [1.0 if j in partners else 0.0 for j in facts.names]
            + [1.0 if (t == c.target and j in partners) else 0.0
               for t in facts.names for j in facts.names if j != t])


def feature_columns(facts: PoolFacts, rule_labels: Sequence[str] = ()) -> list[str]:
    """Column names of :func:`feature_row`."""
    return [*FEATURES, *(f"rule={r}" for r in rule_labels), *partner_columns(facts.names)]


def read_similarity(facts: PoolFacts, path: str | Path) -> PoolFacts:
    """The facts plus the dataset similarity of a study's ``analysis/similarity.json`` (Fig. 2a), when it
    covers every adapter of the pool; otherwise the facts unchanged."""
    sim = json.loads(Path(path).read_text(encoding="utf-8"))
    if not set(facts.names) <= set(sim["names"]):
        return facts
    order = [sim["names"].index(n) for n in facts.names]
    mat = np.asarray(sim["matrix"], dtype=np.float64)[np.ix_(order, order)]
    return PoolFacts(facts.names, facts.fsd, mat)


def feature_matrix(
    measured: Sequence[Measured], facts: PoolFacts, single_metrics: Mapping[str, float],
    rule_labels: Sequence[str] = (),
) -> tuple[np.ndarray, list[str]]:
    """[n, f] features of measured mixtures (columns: :func:`feature_columns`)."""
    rows = [feature_row(m.candidate, facts, single_metrics, m.target_sign_change, rule_labels) for m in measured]
    columns = feature_columns(facts, rule_labels)
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(columns)), columns
