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
    from adaptermix.artefacts.masked import MaskedArtefact
    from adaptermix.artefacts.pool import AdapterPool
    from adaptermix.backbone.loading import Encoder
    from adaptermix.data.config import DataConfig
    from adaptermix.diagnostics.conflicts import GroupedFSD
    from adaptermix.recommend.predictor import Dataset, PredictorReport
    from adaptermix.recommend.search import SearchResult
    from adaptermix.sweep.runner import Backend, SweepSummary
    from adaptermix.sweep.spec import SweepSpec
    from adaptermix.sweep.stats import SweepStats

__all__ = [
    "load_adapter", "load_pool", "save", "fsd", "fsd_by_kind", "fsd_summary", "fsd_grouped", "mix", "mix_masked",
    "prune", "evaluate", "eval_data", "run_sweep", "results", "stats", "sweep_stats", "predictor_data", "predict",
    "recommend_mixture",
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


def fsd_summary(pool: Any, space: str = "raw", replicate_of: Mapping[str, str] | None = None,
                top_fraction: float | None = None, from_init: bool = False) -> dict[str, Any]:
    """Everything ``adaptermix fsd`` writes to ``fsd.json`` (JSON-ready): the domain adapters' FSD matrix,
    every pair's FSD by tensor kind and, with ``replicate_of`` (replicate -> domain adapter, both in the
    pool), each domain's noise floor; ``top_fraction``: also the FSD of the top-magnitude weights;
    ``from_init``: compare what training changed instead of the weights (not the paper's FSD)."""
    from adaptermix.artefacts.pool import fsd_summary as _summary

    return _summary(_pool(pool), space, replicate_of, top_fraction, from_init=from_init)


def fsd_grouped(pool: Any, by: str = "layer", space: str = "raw") -> GroupedFSD:
    """FSD matrices per group of parameters (``by``: layer, site, module, kind or tensor)."""
    from adaptermix.diagnostics import grouped_fsd

    return grouped_fsd(_pool(pool).stacked_in(space), by)


def mix(pool: Any, rule: str = "average", target: str | None = None, space: str = "raw", heads: str = "target",
        **params: Any) -> Adapter:
    """Mix a pool with a registered rule (``adaptermix list rules``) into one in-memory adapter for ``target``
    (whose head it uses); the provenance lists exactly the adapters whose weights went in.

    ``space``: raw parameters (the paper's Eq. 1), ``tv`` task vectors or ``dw`` LoRA updates; ``heads``:
    the target's own head, or ``average`` (identical label sets only)."""
    from adaptermix.artefacts.transforms import mix_pool

    return mix_pool(_pool(pool), rule, target, space, heads, **params)


def mix_masked(pool: Any, rule: str = "emr", space: str = "raw", **params: Any) -> MaskedArtefact:
    """One masked merge (``emr`` or ``tall_mask``) holding every domain's view, stored once
    (:mod:`adaptermix.artefacts.masked`); ``mix`` with a ``target`` gives one domain's view as an ordinary adapter."""
    from adaptermix.artefacts.masked import masked_merge

    return masked_merge(_pool(pool), rule, space, **params)


def prune(adapter: Adapter, sparsity: float, scope: str = "global") -> Adapter:
    """Magnitude pruning (Alg. 2) of an adapter's body to ``sparsity`` (the head stays dense)."""
    from adaptermix.artefacts.transforms import prune_adapter
    from adaptermix.pruning import check_sparsity

    check_sparsity(sparsity)
    return prune_adapter(adapter, sparsity, scope)


def eval_data(adapter: Adapter | str | Path, split: str = "test", dataset: str | None = None,
              data_dir: str | None = None, max_examples: int | None = None) -> DataConfig:
    """The data an evaluation reads: ``dataset`` or the adapter's own (as recorded at training, without its
    training caps), from ``data_dir`` for a data pack, capped at a seeded ``max_examples`` sample."""
    from adaptermix.core.config import validate
    from adaptermix.data.config import DataConfig

    ad = load_adapter(adapter) if isinstance(adapter, str | Path) else adapter
    base = {"name": dataset} if dataset else dict((ad.meta.training or {}).get("data") or {"name": ad.name})
    if data_dir and base.get("source", "datapack") == "datapack":
        base["data_dir"] = data_dir
    for key in ("max_train", "max_validation", "max_test"):
        base.pop(key, None)
    if max_examples:
        base[f"max_{split}"] = max_examples
    return validate(DataConfig, base, source="data")


def evaluate(adapter: Adapter | str | Path, split: str = "test", dataset: str | None = None,
             data_dir: str | None = None, max_examples: int | None = None, max_length: int = 128,
             batch_size: int = 64, precision: str | None = None, encoder: Encoder | None = None) -> dict[str, float]:
    """Metrics of an adapter (a path, or an in-memory one such as :func:`mix`'s or a masked artefact's
    domain view) on a split of its dataset (:func:`eval_data` says which data)."""
    from adaptermix.training.run import eval_adapter, prepared_eval
    from adaptermix.training.run import evaluate as _evaluate

    data = eval_data(adapter, split, dataset, data_dir, max_examples)
    if isinstance(adapter, str | Path):
        return eval_adapter(adapter, split, data, encoder=encoder, batch_size=batch_size, max_length=max_length,
                            precision=precision)
    with prepared_eval(adapter, split, data, encoder, max_length=max_length, precision=precision) as (
        model, tset, info,
    ):
        return _evaluate(model, tset, info, batch_size)


def run_sweep(spec: SweepSpec | Mapping[str, Any] | str | Path, store: str | Path, progress: bool = True,
              encoder: Encoder | None = None, shard: tuple[int, int] | None = None,
              backend: Backend | None = None) -> SweepSummary:
    """Run (or resume) a sweep — a spec object, a dict as in a spec YAML, or a YAML path — into a store;
    ``shard`` (i, n): only shard i of n (1-based); ``backend``: e.g. the Ray backend (default: in process)."""
    from adaptermix.sweep.runner import run_sweep as _run
    from adaptermix.sweep.spec import SweepSpec as _Spec
    from adaptermix.sweep.spec import load_spec

    if isinstance(spec, str | Path):
        spec = load_spec(spec)
    elif not isinstance(spec, _Spec):
        spec = _Spec.model_validate(dict(spec))
    return _run(spec, store, shard, encoder=encoder, progress=progress, backend=backend)


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

    tables = sweep_stats(store).tables()
    return {name: pd.DataFrame([asdict(r) if is_dataclass(r) and not isinstance(r, type) else dict(r) for r in rows])
            for name, rows in tables.items()}


def sweep_stats(store: str | Path) -> SweepStats:
    """The statistics behind :func:`stats`, as typed rows (what ``adaptermix stats`` prints and writes)."""
    from adaptermix.sweep.stats import compute_stats

    return compute_stats(store)


def predictor_data(store: str | Path, evaluation: str = "clean", rules: Sequence[str] | None = None) -> Dataset:
    """The measured mixtures of a store (a study's method folder with ``fsd.json``, or a ``results.sqlite``
    beside one) as the predictor's design matrix."""
    from adaptermix.core.errors import ArtefactError
    from adaptermix.recommend.features import read_measured, read_pool_facts
    from adaptermix.recommend.predictor import Dataset as _Dataset

    db = Path(store)
    if db.is_dir():
        db = db / "results.sqlite"
    if not db.is_file():
        raise ArtefactError(f"{store}: no results store (a results.sqlite, or a study's method folder)")
    return _Dataset.build(read_measured(db, evaluation, list(rules) if rules else None), read_pool_facts(db.parent))


def predict(store: str | Path | Dataset, evaluation: str = "clean", rules: Sequence[str] | None = None,
            folds: int = 5, seed: int = 0, model: str = "ridge", alpha: float = 3.0) -> PredictorReport:
    """The mixture-quality predictor's held-out and leave-one-target-out accuracy on a store (or on
    :func:`predictor_data`'s dataset); ``alpha``: the ridge penalty. See docs/recommend.md."""
    from adaptermix.recommend.predictor import Dataset as _Dataset
    from adaptermix.recommend.predictor import evaluate_predictor

    data = store if isinstance(store, _Dataset) else predictor_data(store, evaluation, rules)
    return evaluate_predictor(data, folds=folds, seed=seed, alpha=alpha, model=model)


def recommend_mixture(pool: Sequence[str | Path] | Mapping[str, str | Path] | SweepSpec, store: str | Path,
                      target: str, budget: int, strategy: str = "model", min_k: int = 1, evaluation: str = "clean",
                      rules: Sequence[Mapping[str, Any]] = ({"name": "average"},),
                      max_eval_examples: int | None = None, max_length: int | None = None, seed: int = 0,
                      use_prior: bool = True, encoder: Encoder | None = None, similarity: str | Path | bool = False,
                      data: str | None = None, precision: str | None = None, progress: bool = False) -> SearchResult:
    """The best mixture for ``target`` within ``budget`` evaluations, each recorded in ``store`` as an
    ordinary sweep trial (reused on a rerun and by an exhaustive sweep); see docs/recommend.md.

    ``pool``: adapter folders (a list, or name -> folder), or a ready sweep spec (a study's, whose rules and
    evaluation should match ``rules`` and ``evaluation``). ``similarity``: a ``similarity.json`` (a study's
    analysis), True to embed training texts, False to embed only when the strategy needs it (adaptersoup).
    The result counts the evaluations run and read from the store (``new_evaluations``, ``reused_evaluations``)."""
    import dataclasses

    from adaptermix.recommend.features import read_similarity
    from adaptermix.recommend.live import live_evaluator, with_similarity
    from adaptermix.recommend.search import SearchSpace, search
    from adaptermix.sweep.spec import RuleSpec
    from adaptermix.sweep.spec import SweepSpec as _Spec

    if isinstance(pool, _Spec):
        spec = pool
    else:
        names = {str(k): str(v) for k, v in pool.items()} if isinstance(pool, Mapping) else [str(p) for p in pool]
        spec = _Spec.model_validate({"pool": names, "rules": [dict(r) for r in rules], "evaluations": [evaluation],
                                     "max_eval_examples": max_eval_examples, "max_length": max_length,
                                     "data": data, "seed": seed, "precision": precision})
    store = Path(store)
    with live_evaluator(spec, store, progress=progress, encoder=encoder) as ev:
        facts = ev.facts
        if isinstance(similarity, str | Path):
            facts = read_similarity(facts, Path(similarity))
        elif similarity or strategy == "adaptersoup":
            facts = with_similarity(facts, spec.pool_dirs(), store.parent / "embeddings.safetensors", spec.data)
        space = SearchSpace(target, facts, tuple(RuleSpec.model_validate(dict(r)) for r in rules),
                            sign_change=ev.sign_change, min_k=min_k)
        result = search(strategy, space, ev, budget, seed=seed, prior=ev.prior() if use_prior else ())
        return dataclasses.replace(result, new_evaluations=ev.new, reused_evaluations=ev.reused)
