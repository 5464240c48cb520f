"""AdapterSoup's adapter selection (Chronopoulou et al., 2023): which domain adapters to average.

AdapterSoup picks the adapters to average for a domain in one of two ways:

* **sentence-embedding similarity** (:func:`select_by_similarity`): every training domain is summarised by
  the centroid of its texts' sentence embeddings; the other domains are added in order of the cosine
  between their centroid and the target's, at most 5 adapters and only those with cosine > 0.15;
* **clustering** (:func:`select_by_clustering`): a Gaussian mixture with one component per training
  domain is fitted on the sentence embeddings of all domains' texts and the target's texts are assigned
  to components; the domains whose clusters receive at least 10 % of the target's texts are added in
  order of that share, at most 5 adapters.

Deviations from the paper, all deliberate:

* **In-domain setting.** AdapterSoup selects adapters for a *novel* domain that has no adapter of its own.
  In adaptermix the target is one of the pool's domains, so its own adapter is always in the mixture,
  first; the rules choose the *others*, and ``max_adapters`` (default 5) counts the target too.
* **Majority mapping.** The paper does not say how a mixture component is tied to a domain. Here a
  component belongs to the domain whose texts it holds most of (ties by domain name); a domain's share is
  the summed share of all components that belong to it, and a component that holds no texts belongs to
  no domain.
* **Diagonal covariances** by default (``covariance_type="diag"``): full covariances of 384-d MiniLM
  embeddings estimated from a few hundred texts per domain are singular (rank below 384; only sklearn's
  ``reg_covar`` ridge makes them invertible), while a diagonal needs 384 variances per component.
* **Encoder.** Texts are embedded with the packaged all-MiniLM-L6-v2
  (:func:`adaptermix.analysis.similarity.load_sentence_encoder`), as the dataset analyses do.

Selection reads each domain's *training* texts only (:func:`pool_texts`): choosing on the test split would
leak the evaluation data into the choice of the mixture. Ties are broken by domain name throughout, so a
selection is deterministic (the clustering also for a given ``seed``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adaptermix.analysis.similarity import SENTENCE_ENCODER, centroid_similarity
from adaptermix.core.config import validate
from adaptermix.core.errors import ConfigError
from adaptermix.core.hashing import sha256_hex
from adaptermix.data.config import DataConfig

Encode = Callable[[list[str]], np.ndarray]

#: Metadata key of the embedding cache that identifies the texts and the encoder it was computed from.
CACHE_KEY = "adaptermix.adaptersoup.key"


@dataclass(frozen=True)
class Selection:
    """The adapters chosen for ``target``: the target first, then the chosen others in order."""

    target: str
    adapters: tuple[str, ...]
    #: Per other domain: the cosine to the target (similarity) or its share of the target's texts (clustering).
    scores: dict[str, float]
    method: str  # "similarity" | "clustering"

    def ranking(self) -> list[str]:
        """Every other domain ordered by score, best first (ties by name); an ordering for a search."""
        return sorted(self.scores, key=lambda n: (-self.scores[n], n))


def _check_common(names: Sequence[str], target: str, max_adapters: int) -> None:
    if not names:
        raise ConfigError("no domains given to select adapters from")
    if len(set(names)) != len(names):
        raise ConfigError("two domains have the same name")
    if target not in names:
        raise ConfigError(f"unknown target {target!r} (domains: {', '.join(names)})")
    if max_adapters < 1:
        raise ConfigError(f"max_adapters must be at least 1, got {max_adapters}")


def _select(target: str, scores: dict[str, float], bar: Callable[[float], bool], max_adapters: int,
            method: str) -> Selection:
    ordered = sorted(scores, key=lambda n: (-scores[n], n))
    chosen = [n for n in ordered if bar(scores[n])][: max_adapters - 1]
    return Selection(target, (target, *chosen), scores, method)


def select_by_similarity_matrix(similarity: np.ndarray, names: Sequence[str], target: str, *,
                                max_adapters: int = 5, threshold: float = 0.15) -> Selection:
    """AdapterSoup's similarity rule on a precomputed [n, n] cosine matrix over ``names``.

    The others with cosine > ``threshold`` to the target are added best first, up to ``max_adapters``
    adapters including the target.
    """
    names = list(names)
    _check_common(names, target, max_adapters)
    if not -1.0 <= threshold <= 1.0:
        raise ConfigError(f"threshold must lie in [-1, 1], got {threshold}")
    sim = np.asarray(similarity, dtype=np.float64)
    if sim.shape != (len(names), len(names)):
        raise ConfigError(f"similarity matrix has shape {sim.shape}, expected {(len(names), len(names))}")
    if not np.isfinite(sim).all():
        raise ConfigError("similarity matrix contains NaN or Inf")
    row = sim[names.index(target)]
    scores = {n: float(row[i]) for i, n in enumerate(names) if n != target}
    return _select(target, scores, lambda s: s > threshold, max_adapters, "similarity")


def select_by_similarity(centroids: Mapping[str, np.ndarray], target: str, *, max_adapters: int = 5,
                         threshold: float = 0.15) -> Selection:
    """AdapterSoup's similarity rule on domain centroids (name -> [d] vector, see :func:`domain_centroids`)."""
    names = list(centroids)
    _check_common(names, target, max_adapters)
    vecs = [np.asarray(centroids[n], dtype=np.float64) for n in names]
    for n, v in zip(names, vecs, strict=True):
        if v.ndim != 1 or v.shape != vecs[0].shape or v.size == 0:
            raise ConfigError(f"centroid of {n!r} has shape {v.shape}; all must be 1-D of one dimension")
    return select_by_similarity_matrix(centroid_similarity(np.stack(vecs)), names, target,
                                       max_adapters=max_adapters, threshold=threshold)


def _check_embeddings(embeddings: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    if not embeddings:
        raise ConfigError("no domain embeddings given")
    out = {n: np.asarray(e, dtype=np.float64) for n, e in embeddings.items()}
    dim = next(iter(out.values())).shape[1:]
    for n, e in out.items():
        if e.ndim != 2 or e.shape[0] == 0 or e.shape[1:] != dim or e.shape[1] == 0:
            raise ConfigError(f"embeddings of {n!r} have shape {e.shape}; all must be [n>0, d] with one d")
        if not np.isfinite(e).all():
            raise ConfigError(f"embeddings of {n!r} contain NaN or Inf")
    return out


def domain_centroids(embeddings: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Domain name -> the mean of its texts' embeddings ([n, d] -> [d], float64)."""
    return {n: e.mean(axis=0) for n, e in _check_embeddings(embeddings).items()}


@dataclass(frozen=True)
class DomainMixture:
    """AdapterSoup's Gaussian mixture over the domains' embeddings, one component per domain, each component
    tied to the domain whose texts it holds most of (ties by domain name; an empty component to none)."""

    names: tuple[str, ...]  # sorted
    gmm: Any  # a fitted sklearn GaussianMixture
    component_domain: dict[int, int]  # component -> index into names

    def shares(self, queries: np.ndarray) -> dict[str, float]:
        """Domain name -> the share of ``queries`` ([n, d] embeddings) assigned to its components."""
        q = np.asarray(queries, dtype=np.float64)
        if q.ndim != 2 or q.shape[0] == 0 or q.shape[1] != self.gmm.means_.shape[1] or not np.isfinite(q).all():
            raise ConfigError(f"query embeddings have shape {q.shape}; expected finite [n>0, "
                              f"{self.gmm.means_.shape[1]}]")
        labels = self.gmm.predict(q)
        out = {n: 0.0 for n in self.names}
        for c, d in self.component_domain.items():
            out[self.names[d]] += float((labels == c).mean())
        return out


def fit_domain_mixture(embeddings: Mapping[str, np.ndarray], *, seed: int = 0,
                       covariance_type: str = "diag") -> DomainMixture:
    """Fit AdapterSoup's mixture (one component per domain, seeded) on every domain's embeddings."""
    from sklearn.mixture import GaussianMixture

    emb = _check_embeddings(embeddings)
    names = sorted(emb)  # the fit does not depend on the mapping's order
    data = np.concatenate([emb[n] for n in names])
    if len(data) < len(names):
        raise ConfigError(f"{len(data)} texts cannot fit a mixture of {len(names)} components")
    owner = np.repeat(np.arange(len(names)), [len(emb[n]) for n in names])
    gmm = GaussianMixture(len(names), covariance_type=covariance_type, random_state=seed)
    try:
        labels = gmm.fit_predict(data)  # consistent with gmm.predict(data) (sklearn's final E-step)
    except ValueError as exc:
        raise ConfigError(f"Gaussian mixture failed ({str(exc).splitlines()[0]})") from None
    # names are sorted, so argmax (first maximum) breaks count ties by domain name
    counts = np.zeros((len(names), len(names)), dtype=np.int64)  # [component, domain]
    np.add.at(counts, (labels, owner), 1)
    component_domain = {c: int(counts[c].argmax()) for c in range(len(names)) if counts[c].sum() > 0}
    return DomainMixture(tuple(names), gmm, component_domain)


def select_by_shares(shares: Mapping[str, float], target: str, *, max_adapters: int = 5,
                     min_share: float = 0.10) -> Selection:
    """AdapterSoup's clustering rule on precomputed shares (domain -> share of the target's texts)."""
    names = list(shares)
    _check_common(names, target, max_adapters)
    if not 0.0 < min_share <= 1.0:
        raise ConfigError(f"min_share must lie in (0, 1], got {min_share}")
    scores = {n: float(shares[n]) for n in sorted(names) if n != target}
    return _select(target, scores, lambda s: s >= min_share, max_adapters, "clustering")


def select_by_clustering(embeddings: Mapping[str, np.ndarray], target: str, *, max_adapters: int = 5,
                         min_share: float = 0.10, seed: int = 0, covariance_type: str = "diag",
                         queries: np.ndarray | None = None) -> Selection:
    """AdapterSoup's clustering rule: a seeded Gaussian mixture with one component per domain.

    The mixture is fitted on every domain's embeddings (the target's included: it is a training domain
    here); each component belongs to the domain whose texts it holds most of. The others whose components
    receive at least ``min_share`` of the target's texts — ``queries`` when given (e.g. the target's
    validation texts), else the target's own rows of ``embeddings`` — are added by share, up to
    ``max_adapters``.
    """
    emb = _check_embeddings(embeddings)
    _check_common(sorted(emb), target, max_adapters)
    if not 0.0 < min_share <= 1.0:
        raise ConfigError(f"min_share must lie in (0, 1], got {min_share}")
    mixture = fit_domain_mixture(emb, seed=seed, covariance_type=covariance_type)
    shares = mixture.shares(emb[target] if queries is None else queries)
    return select_by_shares(shares, target, max_adapters=max_adapters, min_share=min_share)


def embed_domains(texts: Mapping[str, Sequence[str]], encode: Encode) -> dict[str, np.ndarray]:
    """Domain name -> float32 [n, d] embeddings of its texts, from ``encode`` (texts -> [n, d])."""
    out = {}
    for name, docs in texts.items():
        if not docs:
            raise ConfigError(f"domain {name!r} has no texts to embed")
        emb = np.asarray(encode(list(docs)), dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != len(docs):
            raise ConfigError(f"encoder returned shape {emb.shape} for {len(docs)} texts of {name!r}")
        out[name] = emb
    return out


def texts_key(texts: Mapping[str, Sequence[str]], encoder_name: str) -> str:
    """SHA-256 of the texts (names, order and content) and the encoder's name: the embedding cache's key."""
    payload = json.dumps({"encoder": encoder_name, "texts": [[n, list(t)] for n, t in texts.items()]},
                         ensure_ascii=False, separators=(",", ":"))
    return sha256_hex(payload)


def cached_domain_embeddings(cache_path: Path, texts: Mapping[str, Sequence[str]], encode: Encode, *,
                             encoder_name: str = SENTENCE_ENCODER) -> dict[str, np.ndarray]:
    """:func:`embed_domains`, cached in a ``.safetensors`` file (float32 arrays, never pickle).

    The file's metadata holds :func:`texts_key` of the texts and ``encoder_name`` (name the encoder
    when it is not the packaged MiniLM); another key, or an unreadable file, is recomputed and rewritten.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.numpy import load_file, save_file

    from adaptermix.core.io import atomic_path

    path = Path(cache_path)
    key = texts_key(texts, encoder_name)
    if path.is_file():
        try:
            with safe_open(str(path), framework="numpy") as fh:
                stored = (fh.metadata() or {}).get(CACHE_KEY)
            if stored == key:
                arrays = load_file(str(path))
                if set(arrays) == set(texts):
                    return {n: arrays[n] for n in texts}
        except (SafetensorError, OSError, ValueError):
            pass  # a damaged cache is recomputed
    result = embed_domains(texts, encode)
    with atomic_path(path) as tmp:
        save_file({n: np.ascontiguousarray(e) for n, e in result.items()}, str(tmp), metadata={CACHE_KEY: key})
    return result


def training_data_config(meta_training: Mapping[str, Any] | None, name: str,
                         data_dir: str | None = None) -> DataConfig:
    """The :class:`DataConfig` an adapter was trained on (``adapter.json``'s ``training.data``), caps removed.

    ``data_dir`` replaces the data-pack root recorded at training time (data-pack sources only). The same
    recipe as the sweep's evaluation sets (``SweepContext.eval_set``), which could share this function.
    """
    data = dict((meta_training or {}).get("data") or {"name": name})
    for key in ("max_train", "max_validation", "max_test"):
        data.pop(key, None)
    if data_dir is not None and data.get("source", "datapack") == "datapack":
        data["data_dir"] = data_dir
    return validate(DataConfig, data, source=f"data of adapter {name!r}")


def pool_texts(pool_dirs: Mapping[str, Path], n_docs: int = 300, data_dir: str | None = None,
               seed: int = 13) -> dict[str, list[str]]:
    """Domain name -> up to ``n_docs`` seeded, sampled *training* texts of each adapter of a pool.

    Each adapter's training data config is rebuilt from its ``adapter.json``; the sample is drawn from the
    whole train split (the adapter's own training subset is a capped sample of the same split). The
    test split is never read: selecting on it would leak the evaluation data.
    """
    from adaptermix.analysis.documents import document_text, sample_documents
    from adaptermix.artefacts.artefact import load_adapter
    from adaptermix.data import load_task

    if n_docs < 1:
        raise ConfigError(f"n_docs must be at least 1, got {n_docs}")
    out = {}
    for name, path in pool_dirs.items():
        adapter = load_adapter(path)
        cfg = training_data_config(adapter.meta.training, adapter.name, data_dir)
        rows = load_task(cfg, splits=("train",)).split("train")
        out[name] = sample_documents([document_text(r) for r in rows], n_docs, seed)
    return out
