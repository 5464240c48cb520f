"""A small synthetic study (stores, FSD, analyses, adapters) for the report tests, and tests of the
report's data layer (selecting a setting's rows out of compute_stats' tables)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from adaptermix.io import atomic_write_json, atomic_write_text
from adaptermix.report.data import load_study
from adaptermix.sweep.spec import Trial
from adaptermix.sweep.store import AdversarialExample, Provenance, ResultsStore, TrialResult

TARGETS = ("A", "B", "C", "D")
BASE = {"A": 0.90, "B": 0.80, "C": 0.85, "D": 0.70}
# Pairwise FSD of the synthetic pool (symmetric, zero diagonal).
FSD = np.array(
    [[0.00, 0.10, 0.20, 0.40], [0.10, 0.00, 0.30, 0.35], [0.20, 0.30, 0.00, 0.25], [0.40, 0.35, 0.25, 0.00]]
)
SPARSITIES = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
MIX_SPARSITIES = (0.8, 0.9)
EPS = {"epsilon": 0.01}


def mean_pairwise(subset: Sequence[str]) -> float | None:
    idx = [TARGETS.index(s) for s in subset]
    pairs = list(itertools.combinations(idx, 2))
    return float(np.mean([FSD[i, j] for i, j in pairs])) if pairs else None


def sign_change(target: str, subset: Sequence[str]) -> float:
    t = TARGETS.index(target)
    others = [FSD[t, TARGETS.index(s)] for s in subset if s != target]
    return 0.8 * float(np.mean(others)) * (1 + 0.1 * len(others)) if others else 0.0


def clean_metric(target: str, subset: Sequence[str]) -> float:
    """Falls with k and with the subset's FSD (the paper's picture)."""
    fsd = mean_pairwise(subset) or 0.0
    return round(BASE[target] - 0.02 * (len(subset) - 1) - 0.3 * fsd, 6)


EVAL_METRIC: dict[str, Callable[[str, Sequence[str]], float]] = {
    "clean": clean_metric,
    "fgsm": lambda t, s: round(clean_metric(t, s) - 0.10 - 0.05 * (mean_pairwise(s) or 0.0) * len(s), 6),
    "textfooler": lambda t, s: round(clean_metric(t, s) - 0.20, 6),
}


def subsets_of(target: str) -> list[tuple[str, ...]]:
    others = [t for t in TARGETS if t != target]
    return [(target, *c) for k in range(len(TARGETS)) for c in itertools.combinations(others, k)]


def greedy_order(target: str, largest: bool) -> list[str]:
    others = [t for t in TARGETS if t != target]
    rank = {t: FSD[TARGETS.index(t)].mean() for t in others}
    return sorted(others, key=lambda t: (-rank[t] if largest else rank[t], t))


def _result(
    target: str,
    subset: Sequence[str],
    evaluation: str,
    metric: float,
    rule: str = "average",
    params: dict | None = None,
    tag: str = "",
    examples: tuple = (),
) -> TrialResult:
    trial = Trial(
        target=target,
        subset=tuple(subset),
        rule=rule,
        rule_params=params or {},
        split="test",
        evaluation=evaluation,
        eval_params=EPS if evaluation == "fgsm" else {},
        seed=0,
        tag=tag,
    )
    return TrialResult(
        trial,
        "accuracy",
        metric,
        {"accuracy": metric},
        mean_pairwise(subset),
        sign_change(target, subset),
        "raw",
        100,
        0.1,
        examples,
    )


def make_results(
    textfooler: bool = True,
    greedy: bool = True,
    pruning: bool = True,
    shift: Callable[[str, Sequence[str]], float] = lambda t, s: 0.0,
) -> list[TrialResult]:
    """Every trial of the synthetic study; ``shift(target, subset)`` is added to the clean metric."""
    out = []
    for target in TARGETS:
        for subset in subsets_of(target):
            out.append(_result(target, subset, "clean", clean_metric(target, subset) + shift(target, subset)))
            out.append(_result(target, subset, "fgsm", EVAL_METRIC["fgsm"](target, subset)))
        if textfooler:  # one subset per k, as with textfooler_per_k = 1
            for k in range(1, len(TARGETS) + 1):
                subset = next(s for s in subsets_of(target) if len(s) == k)
                ex = AdversarialExample(
                    0,
                    f"a fine film about {target}",
                    f"a fine movie about {target}",
                    "positive",
                    True,
                    "positive",
                    "negative",
                    queries=12,
                    perturbed_words=1,
                )
                out.append(
                    _result(
                        target,
                        subset,
                        "textfooler",
                        EVAL_METRIC["textfooler"](target, subset),
                        examples=(ex,),
                    )
                )
        if greedy:
            for tag, largest in (("greedy_min", False), ("greedy_max", True)):
                order = greedy_order(target, largest)
                for l in range(1, len(TARGETS) + 1):  # noqa: E741
                    subset = (target, *order[: l - 1])
                    out.append(
                        _result(
                            target,
                            subset,
                            "clean",
                            clean_metric(target, subset) + shift(target, subset),
                            tag=tag,
                        )
                    )
        if pruning:
            for s in SPARSITIES:
                drop = 0.3 if s == 1.0 else (0.005 if s == 0.9 else 0.0)
                out.append(_result(target, (target,), "clean", BASE[target] - drop, "sparse_fsd", {"s": s}))
                # Fig. 8a as the paper prunes: the whole adapter's top-d % (a labelled variant of its own)
                whole = 0.3 if s == 1.0 else (0.002 if s == 0.9 else 0.0)
                out.append(
                    _result(
                        target, (target,), "clean", BASE[target] - whole, "sparse_fsd", {"s": s, "scope": "adapter"}
                    )
                )
            for s in MIX_SPARSITIES:
                for subset in subsets_of(target)[1:]:
                    out.append(
                        _result(
                            target,
                            subset,
                            "clean",
                            clean_metric(target, subset) + 0.05,
                            "sparse_fsd",
                            {"s": s},
                        )
                    )
                    # Alg. 4 proper: only the m = 2 most conflicting layers pruned
                    out.append(
                        _result(
                            target, subset, "clean", clean_metric(target, subset) + 0.07, "sparse_fsd", {"s": s, "m": 2}
                        )
                    )
    return out


def write_store(path: Path, results: Sequence[TrialResult]) -> Path:
    with ResultsStore(path) as store:
        store.begin_run(Provenance.collect("{}", "fp-synthetic", 0))
        store.record(list(results))
    return path


def make_study(
    root: Path, methods: Sequence[str] = ("pfeiffer",), analysis: bool = True, fsd: bool = True, **kw
) -> Path:
    """A study directory in the pipeline's layout, with synthetic results."""
    atomic_write_text(root / "config.yaml", "name: synthetic\ndomains: [A, B, C, D]\n")
    for method in methods:
        write_store(root / method / "results.sqlite", make_results(**kw))
        if fsd:
            atomic_write_json(
                root / method / "fsd.json",
                {
                    "space": "raw",
                    "n_params": 1000,
                    "names": list(TARGETS),
                    "fsd": FSD.tolist(),
                    "row_means": FSD.mean(1).tolist(),
                },
            )
        for t in TARGETS:
            atomic_write_json(
                root / "adapters" / method / t / "adapter.json",
                {"task": {"name": t, "metric": "accuracy"}, "metrics": {"test": {"accuracy": BASE[t]}}},
            )
    if analysis:
        sim = np.full((4, 4), 0.5) + 0.5 * np.eye(4)
        atomic_write_json(
            root / "analysis" / "similarity.json",
            {
                "names": list(TARGETS),
                "matrix": sim.tolist(),
                "n_docs": dict.fromkeys(TARGETS, 10),
                "encoder": "test",
                "note": "synthetic",
            },
        )
        atomic_write_json(
            root / "analysis" / "topics.json",
            {
                "params": {"n_topics": 2},
                "datasets": {
                    "A": {"n_docs": 10, "topics": [["film", "movie"], ["plot", "actor"]]},
                    "B": {"n_docs": 1, "skipped": "empty vocabulary"},
                },
            },
        )
    return root


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory):
    return load_study(make_study(tmp_path_factory.mktemp("study")))


def test_settings_select_rule_evaluation_and_params(study) -> None:
    (md,) = study.methods
    assert md.label == "pfeiffer" and study.name == "synthetic"
    clean = md.per_k("clean")
    assert {(s.target, s.k) for s in clean} == {(t, k) for t in TARGETS for k in range(1, 5)}
    assert [s.count for s in clean if s.target == "A"] == [1, 3, 3, 1], "greedy picks are not counted"
    assert {s.k for s in md.per_k("clean", "sparse_fsd", {"s": 0.4})} == {1}
    assert {s.k for s in md.per_k("clean", "sparse_fsd", {"s": 0.9})} == {1, 2, 3, 4}
    assert md.per_k("clean", "ties") == [] and md.setting("clean", "ties") is None
    assert md.sparsities() == list(SPARSITIES)
    assert set(md.per_k_by_eval()) == {"clean", "fgsm", "textfooler"}
    assert len(md.population("clean")) == 4 * 8


def test_greedy_drops_and_correlations_by_evaluation(study) -> None:
    (md,) = study.methods
    assert {g.target for g in md.greedy()} == {*TARGETS, "*"}
    assert set(md.drops()) == {"clean", "fgsm", "textfooler"}
    assert {c.fsd_stat for c in md.correlations()["clean"]} == {"mean_pairwise_fsd", "target_sign_change"}


def test_single_adapters_provenance_and_adversarial(study) -> None:
    assert study.single == {"pfeiffer": {t: ("accuracy", BASE[t]) for t in TARGETS}}
    (md,) = study.methods
    assert [p["model_fingerprint"] for p in md.provenance] == ["fp-synthetic"]
    assert len(md.adversarial) == 8 and all(e["success"] for e in md.adversarial)
    assert md.adversarial == sorted(md.adversarial, key=lambda e: (e["target"], e["k"], e["trial_key"]))
    assert study.similarity["names"] == list(TARGETS) and "A" in study.topics["datasets"]
    assert json.loads(md.adversarial[0]["subset_json"])[0] == md.adversarial[0]["target"]


def test_empty_study_loads(tmp_path: Path) -> None:
    study = load_study(tmp_path)
    assert study.methods == [] and study.similarity is None and study.config_text is None
