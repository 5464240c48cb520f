"""The library's verbs for notebooks: ``import adaptermix as am``.

Every function here is a thin, typed wrapper over the module that does the work; tables come back as pandas
DataFrames. ``adaptermix/__init__.py`` exposes them lazily, so ``import adaptermix`` stays cheap (no torch)
until a verb is used. See docs/python-api.md for a worked example.

    import adaptermix as am
    pool = am.load_pool({"sst2": "runs/demo/adapters/pfeiffer/sst2", "qnli": "runs/demo/adapters/pfeiffer/qnli"})
    am.fsd(pool)                                    # DataFrame, FSD in [0, 1]
    mixed = am.mix(pool, "average", target="sst2")  # an in-memory adapter
    am.evaluate(mixed, split="test", max_examples=200)
    am.save(mixed, "runs/mixed")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from adaptermix.artefacts.artefact import Adapter
    from adaptermix.artefacts.pool import AdapterPool
    from adaptermix.backbone.loading import Encoder
    from adaptermix.recommend.predictor import PredictorReport
    from adaptermix.recommend.search import SearchResult
    from adaptermix.sweep.runner import SweepSummary
    from adaptermix.sweep.spec import SweepSpec

__all__ = [
    "load_adapter", "load_pool", "save", "fsd", "fsd_by_kind", "mix", "prune", "evaluate", "run_sweep",
    "results", "stats", "predict", "recommend_mixture",
]


def load_adapter(path: str | Path) -> Adapter:
    """An adapter artefact (``adapter.safetensors`` + ``adapter.json``), loaded with safetensors."""
    from adaptermix.artefacts.artefact import load_adapter as _load

    return _load(path)


def load_pool(dirs: Sequence[str | Path] | Mapping[str, str | Path]) -> AdapterPool:
    """Adapters of one method and shape, stacked for FSD and mixing (a list is named by folder names)."""
    from adaptermix.artefacts.pool import load_pool as _load

    return _load(dirs)


def _pool(pool: Any) -> AdapterPool:
    from adaptermix.artefacts.pool import AdapterPool

    return pool if isinstance(pool, AdapterPool) else load_pool(pool)


def save(adapter: Adapter, path: str | Path, overwrite: bool = False) -> Path:
    """Write an adapter artefact to ``path`` (atomically). Existing work there is never replaced silently:
    an error, unless ``overwrite`` or the folder holds an adapter this function wrote."""
    from adaptermix.artefacts.artefact import save_adapter
    from adaptermix.core.io import check_output, mark_output

    stamp = {"command": "save", "inputs": "python-api"}  # any adapter saved here may replace another
    check_output(path, stamp=stamp, overwrite=overwrite)
    out = save_adapter(path, adapter.tensors, adapter.meta)
    mark_output(out, stamp)
    return out


def fsd(pool: Any, space: str = "raw") -> pd.DataFrame:
    """The Fraction of Sign Difference (Alg. 3) between every pair, as an N x N DataFrame in [0, 1]."""
    mat = _pool(pool).fsd(space)
    return pd.DataFrame(mat.values.numpy(), index=list(mat.names), columns=list(mat.names))


def fsd_by_kind(pool: Any) -> pd.DataFrame:
    """FSD of every pair split by tensor kind (down / up / biases; LoRA A, B and dW), long format."""
    from adaptermix.diagnostics import fsd_kind_rows

    p = _pool(pool)
    scale = p.scale if p.is_lora else None
    return pd.DataFrame(fsd_kind_rows(p.stacked_in("raw"), scale))


def mix(pool: Any, rule: str = "average", target: str | None = None, **params: Any) -> Adapter:
    """Mix a pool with a registered rule (``adaptermix list rules``) into one in-memory adapter for ``target``
    (whose head it uses); the provenance lists exactly the adapters whose weights went in."""
    from adaptermix.artefacts.transforms import mix_pool

    return mix_pool(_pool(pool), rule, target, **params)


def prune(adapter: Adapter, sparsity: float, scope: str = "global") -> Adapter:
    """Magnitude pruning (Alg. 2) of an adapter's body to ``sparsity`` (the head stays dense)."""
    from adaptermix.artefacts.transforms import prune_adapter
    from adaptermix.pruning import check_sparsity

    check_sparsity(sparsity)
    return prune_adapter(adapter, sparsity, scope)


def evaluate(adapter: Adapter | str | Path, split: str = "test", dataset: str | None = None,
             data_dir: str | None = None, max_examples: int | None = None, max_length: int = 128,
             batch_size: int = 64, precision: str | None = None, encoder: Encoder | None = None) -> dict[str, float]:
    """Metrics of an adapter (a path, or an in-memory one such as :func:`mix`'s) on a split of its dataset."""
    import tempfile

    from adaptermix.artefacts.artefact import save_adapter
    from adaptermix.core.config import validate
    from adaptermix.data.config import DataConfig
    from adaptermix.training.run import eval_adapter

    with tempfile.TemporaryDirectory(prefix="adaptermix-api-") as tmp:
        if not isinstance(adapter, str | Path):
            path = save_adapter(Path(tmp) / "adapter", adapter.tensors, adapter.meta)
            meta = adapter.meta
        else:
            path = Path(adapter)
            meta = load_adapter(path).meta
        base = {"name": dataset} if dataset else dict((meta.training or {}).get("data") or {"name": meta.task_info.name})
        for key in ("max_train", "max_validation", "max_test"):
            base.pop(key, None)
        if data_dir and base.get("source", "datapack") == "datapack":
            base["data_dir"] = data_dir
        if max_examples:
            base[f"max_{split}"] = max_examples
        data = validate(DataConfig, base, source="data")
        return eval_adapter(path, split, data, encoder=encoder, batch_size=batch_size, max_length=max_length,
                            precision=precision)


def run_sweep(spec: SweepSpec | Mapping[str, Any] | str | Path, store: str | Path, progress: bool = True,
          encoder: Encoder | None = None) -> SweepSummary:
    """Run (or resume) a sweep — a spec object, a dict as in a spec YAML, or a YAML path — into a store."""
    from adaptermix.sweep.runner import run_sweep as _run
    from adaptermix.sweep.spec import SweepSpec as _Spec
    from adaptermix.sweep.spec import load_spec

    if isinstance(spec, str | Path):
        spec = load_spec(spec)
    elif not isinstance(spec, _Spec):
        spec = _Spec.model_validate(dict(spec))
    return _run(spec, store, encoder=encoder, progress=progress)


def results(store: str | Path) -> pd.DataFrame:
    """Every trial of a results store, one row each (subset and metrics decoded from JSON)."""
    import json

    from adaptermix.sweep.store import ResultsStore

    with ResultsStore(store, readonly=True) as s:
        rows = s.rows()
    for r in rows:
        r["subset"] = tuple(json.loads(r.pop("subset_json")))
        r["rule_params"] = json.loads(r.pop("rule_params_json") or "{}")
        r["eval_params"] = json.loads(r.pop("eval_params_json") or "{}")
        r["metrics"] = json.loads(r.pop("metrics_json") or "{}")
    return pd.DataFrame(rows)


def stats(store: str | Path) -> dict[str, pd.DataFrame]:
    """The sweep statistics of ``adaptermix stats``: per-k means, Table 1 (signed drops), correlations,
    greedy mixing — one DataFrame each."""
    from dataclasses import asdict, is_dataclass

    from adaptermix.sweep.stats import compute_stats

    tables = compute_stats(store).tables()
    return {name: pd.DataFrame([asdict(r) if is_dataclass(r) and not isinstance(r, type) else dict(r) for r in rows])
            for name, rows in tables.items()}


def predict(store: str | Path, evaluation: str = "clean", rules: Sequence[str] | None = None,
            folds: int = 5, seed: int = 0, model: str = "ridge") -> PredictorReport:
    """The mixture-quality predictor's held-out and leave-one-target-out accuracy on a store (a study's
    method folder with ``fsd.json``, or a ``results.sqlite`` beside one); see docs/recommend.md."""
    from adaptermix.recommend.features import read_measured, read_pool_facts
    from adaptermix.recommend.predictor import Dataset, evaluate_predictor

    path = Path(store)
    db = path / "results.sqlite" if path.is_dir() else path
    data = Dataset.build(read_measured(db, evaluation, rules), read_pool_facts(db.parent))
    return evaluate_predictor(data, folds=folds, seed=seed, model=model)


def recommend_mixture(pool: Sequence[str | Path] | Mapping[str, str | Path], store: str | Path, target: str, budget: int,
              strategy: str = "model", min_k: int = 1, evaluation: str = "clean",
              rules: Sequence[Mapping[str, Any]] = ({"name": "average"},), max_eval_examples: int | None = None,
              max_length: int | None = None, seed: int = 0, use_prior: bool = True,
              encoder: Encoder | None = None) -> SearchResult:
    """The best mixture for ``target`` within ``budget`` evaluations, each recorded in ``store`` as an
    ordinary sweep trial (reused on a rerun and by an exhaustive sweep); see docs/recommend.md."""
    from adaptermix.recommend.live import live_evaluator
    from adaptermix.recommend.search import SearchSpace, search
    from adaptermix.sweep.spec import RuleSpec
    from adaptermix.sweep.spec import SweepSpec as _Spec

    names = {str(k): str(v) for k, v in pool.items()} if isinstance(pool, Mapping) else [str(p) for p in pool]
    spec = _Spec.model_validate({"pool": names,
                                 "rules": [dict(r) for r in rules], "evaluations": [evaluation],
                                 "max_eval_examples": max_eval_examples, "max_length": max_length, "seed": seed})
    with live_evaluator(spec, store, progress=False, encoder=encoder) as ev:
        space = SearchSpace(target, ev.facts, tuple(RuleSpec.model_validate(dict(r)) for r in rules),
                            sign_change=ev.sign_change, min_k=min_k)
        return search(strategy, space, ev, budget, seed=seed, prior=ev.prior() if use_prior else ())
