"""AdapterSoup's selections for a sweep: computed once per sweep, followed by the ``adaptersoup_*`` generators.

For every target and each of the two generators the runner calls :func:`compute_selections` before it
expands the spec (as it computes the FSD matrix for greedy), then records the result in the store
(:meth:`adaptermix.sweep.store.ResultsStore.record_selections`) so statistics and the report can say which
adapters were chosen, with which score, from which texts.

Text sources (issue #18): every candidate domain is represented by its *training* texts
(:func:`adaptermix.recommend.adaptersoup.pool_texts`); the target by a seeded sample of its *validation*
split (:func:`target_texts`), or of its training split when the dataset has no validation split (recorded
as ``target_texts: "train"``). The test split, which the sweep evaluates on, is never read.

* similarity: the cosine between the centroid of the target's validation texts and each other domain's
  training centroid; the others with cosine > ``threshold`` are added best first.
* cluster: one Gaussian mixture (a component per domain) fitted once on every domain's training texts;
  each target's validation texts are assigned to components, and the others whose components take at least
  ``min_share`` of them are added by share.

Deviation from AdapterSoup, on purpose: the paper's target is a novel domain whose texts are all it has; here
the target is a pool domain, so its own adapter comes first and ``max_adapters`` counts it (see
:mod:`adaptermix.recommend.adaptersoup`). Embeddings come from the packaged MiniLM (the study's sentence
encoder) and are cached in a ``.safetensors`` file keyed by the texts and the encoder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adaptermix.core.errors import DataError
from adaptermix.recommend.adaptersoup import (
    Encode,
    Selection,
    cached_domain_embeddings,
    domain_centroids,
    embed_domains,
    fit_domain_mixture,
    pool_texts,
    select_by_shares,
    select_by_similarity,
    training_data_config,
)
from adaptermix.sweep.spec import AdapterSoupSpec

#: generator -> (Selection.method, what its scores are)
SOUP_GENERATORS: dict[str, tuple[str, str]] = {
    "adaptersoup_similarity": ("similarity", "cosine"),
    "adaptersoup_cluster": ("clustering", "share"),
}


@dataclass(frozen=True)
class SoupSelection:
    """One generator's selection for one target, as recorded in the store (JSON-ready via :meth:`to_dict`)."""

    generator: str
    target: str
    adapters: tuple[str, ...]  # the target first, then the chosen others in order
    scores: dict[str, float]  # every other domain's cosine or share
    score: str  # "cosine" | "share"
    target_texts: str  # "validation" | "train" (no validation split)
    n_target_texts: int
    candidate_texts: str = "train"
    encoder: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "adapters": list(self.adapters)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SoupSelection:
        known = {f for f in cls.__dataclass_fields__}
        fields = {k: v for k, v in data.items() if k in known}
        fields["adapters"] = tuple(fields.get("adapters") or ())
        fields["scores"] = {str(k): float(v) for k, v in (fields.get("scores") or {}).items()}
        return cls(**fields)

    def chosen_scores(self) -> list[float]:
        """The score of each chosen adapter after the target, in selection order."""
        return [self.scores[n] for n in self.adapters[1:]]


def target_texts(adapter_dir: Path, n_docs: int, data_dir: str | None = None,
                 seed: int = 13) -> tuple[list[str], str]:
    """Up to ``n_docs`` seeded texts of the target's *validation* split, and ``"validation"``; a dataset
    without a (non-empty) validation split gives its training texts and ``"train"``. Never the test split."""
    from adaptermix.analysis.documents import document_text, sample_documents
    from adaptermix.artefacts.artefact import load_adapter
    from adaptermix.data import load_task

    adapter = load_adapter(adapter_dir)
    cfg = training_data_config(adapter.meta.training, adapter.name, data_dir)
    try:
        rows, split = load_task(cfg, splits=("validation",)).split("validation"), "validation"
    except DataError as exc:
        # Only a missing or empty validation split falls back; a broken one is an error.
        if not any(m in str(exc) for m in ("has no 'validation' split", "(empty split)", "is empty")):
            raise
        rows, split = load_task(cfg, splits=("train",)).split("train"), "train"
    return sample_documents([document_text(r) for r in rows], n_docs, seed), split


def selections_from_embeddings(
    train: Mapping[str, np.ndarray], queries: Mapping[str, np.ndarray], sources: Mapping[str, str],
    generators: Sequence[str], params: AdapterSoupSpec, encoder: str = "",
) -> dict[str, dict[str, SoupSelection]]:
    """generator -> target -> selection, from every pool domain's training embeddings (``train``) and each
    target's query embeddings (``queries``: its validation texts; ``sources`` says which split)."""
    out: dict[str, dict[str, SoupSelection]] = {}
    recorded = params.model_dump(mode="json")
    centroids = domain_centroids(train)
    mixture = (fit_domain_mixture(train, seed=params.seed, covariance_type=params.covariance_type)
               if "adaptersoup_cluster" in generators else None)
    for gen in generators:
        method, score = SOUP_GENERATORS[gen]
        out[gen] = {}
        for target, q in queries.items():
            sel: Selection
            if method == "similarity":
                own = domain_centroids({target: q})[target]
                sel = select_by_similarity({**centroids, target: own}, target,
                                           max_adapters=params.max_adapters, threshold=params.threshold)
            else:
                assert mixture is not None
                sel = select_by_shares(mixture.shares(q), target, max_adapters=params.max_adapters,
                                       min_share=params.min_share)
            out[gen][target] = SoupSelection(gen, target, sel.adapters, dict(sel.scores), score, sources[target],
                                             len(q), "train", encoder, recorded)
    return out


def compute_selections(
    pool_dirs: Mapping[str, Path], targets: Sequence[str], generators: Sequence[str], params: AdapterSoupSpec,
    data_dir: str | None = None, cache: Path | None = None, encode: Encode | None = None,
    encoder_name: str | None = None,
) -> dict[str, dict[str, SoupSelection]]:
    """What the AdapterSoup generators follow: per generator and target, the selection (see the module).

    ``encode`` defaults to the packaged MiniLM; ``cache`` (a ``.safetensors`` path) keeps the embeddings
    between runs, keyed by the texts and ``encoder_name``."""
    from adaptermix.analysis.similarity import SENTENCE_ENCODER, load_sentence_encoder

    name = encoder_name or (SENTENCE_ENCODER if encode is None else "custom")
    train_texts = pool_texts(pool_dirs, n_docs=params.n_docs, data_dir=data_dir, seed=params.sample_seed)
    sources: dict[str, str] = {}
    texts = {f"train:{n}": t for n, t in train_texts.items()}
    for target in targets:
        docs, split = target_texts(pool_dirs[target], params.n_docs, data_dir, params.sample_seed)
        texts[f"target:{target}"], sources[target] = docs, split
    enc = encode or load_sentence_encoder()
    emb = (cached_domain_embeddings(cache, texts, enc, encoder_name=name) if cache is not None
           else embed_domains(texts, enc))
    train = {n: emb[f"train:{n}"] for n in train_texts}
    queries = {t: emb[f"target:{t}"] for t in targets}
    return selections_from_embeddings(train, queries, sources, generators, params, name)


def selection_names(selections: Mapping[str, Mapping[str, SoupSelection]]) -> dict[str, dict[str, list[str]]]:
    """generator -> target -> the chosen adapters in order: what :func:`adaptermix.sweep.spec.expand` takes."""
    return {g: {t: list(s.adapters) for t, s in per.items()} for g, per in selections.items()}
