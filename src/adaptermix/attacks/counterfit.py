"""Counter-fitting word vectors to linguistic constraints (Mrkšić et al., NAACL 2016), vectorised.

TextFooler draws its synonym candidates from counter-fitted vectors: GloVe/Paragram vectors moved so that
antonyms are far apart and synonyms close, while the rest of the space keeps its shape. The paper's
objective over unit vectors ``v'`` (cosine distance ``d(a, b) = 1 - a.b``, ``tau(x) = max(0, x)``)::

    C(V') = k1 * sum_{(u,w) in A} tau(delta - d(v'_u, v'_w))            antonym repel (AR)
          + k2 * sum_{(u,w) in S} tau(d(v'_u, v'_w) - gamma)            synonym attract (SA)
          + k3 * sum_i sum_{j in N(i)} tau(d(v'_i, v'_j) - d(v_i, v_j))  vector space preservation (VSP)

with ``N(i)`` the words within distance ``rho`` of ``v_i`` in the original space. Hyper-parameters are the
paper's and its reference code's (``experiment_parameters.cfg``): k1 = k2 = k3 = 0.1, delta = 1.0,
gamma = 0.0, rho = 0.2, 20 epochs.

The optimisation follows the reference code (``counterfitting.py``, ``one_step_SGD``): each epoch is one
full-batch step in which every word moves by the *mean* of the gradient terms of its active constraints,
then every vector is renormalised. Here all pairs are processed at once with array operations instead of
Python loops over word pairs. Deviations from the reference code, each a fix of an evident slip:

- VSP pairs are used in both directions (``N(i)`` is symmetric in the paper); the reference code stores
  ``(word_j, word_j)`` instead of ``(word_j, word_i)``, so it only ever pulls the first word of a pair.
- Antonym pairs are removed from the VSP pairs (the reference intends this but calls ``dict.remove``,
  which does not exist); with 50-d GloVe many antonyms (good/bad) are within rho and would otherwise be
  held together by VSP while AR pushes them apart.
- The VSP neighbourhood is all pairs within ``rho`` found by blocked matrix products (exact, not sampled).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import NonNegativeInt, PositiveInt, model_validator

from adaptermix.core.config import StrictModel
from adaptermix.core.errors import ResourceError

Progress = Callable[[str], None]


class CounterFitConfig(StrictModel):
    """What counter-fitting computes: constraint files, vocabulary and the paper's hyper-parameters."""

    k1: float = 0.1  # weight of antonym repel
    k2: float = 0.1  # weight of synonym attract
    k3: float = 0.1  # weight of vector space preservation
    delta: float = 1.0  # antonyms are pushed until their cosine distance is >= delta
    gamma: float = 0.0  # synonyms are pulled until their cosine distance is <= gamma
    rho: float = 0.2  # VSP keeps pairs whose original cosine distance is <= rho
    epochs: PositiveInt = 20
    # "lexical": lexical/vocabulary.txt (the released counter-fitted vectors' word list) that GloVe covers;
    # "glove": GloVe's own most frequent words (needs max_words).
    vocabulary: Literal["lexical", "glove"] = "lexical"
    max_words: PositiveInt | None = None  # keep only the N most frequent words (GloVe's order)
    # All-but-the-top (Mu & Viswanath 2018) before counter-fitting: subtract the mean vector and the top
    # principal components (0 = off, the paper's setting). See all_but_the_top for why 1 is our default.
    remove_components: NonNegativeInt = 1
    synonym_files: tuple[str, ...] = ("ppdb_synonyms.txt",)
    antonym_files: tuple[str, ...] = ("ppdb_antonyms.txt", "wordnet_antonyms.txt")

    @model_validator(mode="after")
    def _check(self) -> CounterFitConfig:
        if self.vocabulary == "glove" and self.max_words is None:
            raise ValueError(
                "counterfit.vocabulary 'glove' needs counterfit.max_words (GloVe has 400k words)"
            )
        return self


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32); the epsilon is the reference code's."""
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.sqrt((vectors**2).sum(axis=1, keepdims=True) + 1e-6)


def all_but_the_top(vectors: np.ndarray, components: int) -> np.ndarray:
    """Subtract the mean and the projections on the top ``components`` principal directions.

    A deviation from Mrkšić et al., who counter-fit 300-d Paragram/GloVe vectors as they are. 50-d GloVe
    is strongly anisotropic: frequent words share a common direction, so at TextFooler's cosine >= 0.8
    function words become "synonyms" of content words ("takes" -> "a", "this"; "good" -> "always",
    "manner") and antonym repel barely separates good/bad (cos 0.67 after 20 epochs). Removing the mean
    and the first principal component (Mu & Viswanath 2018, "All-but-the-Top") fixes both ("good" ->
    better, decent, nice; cos(good, bad) 0.11) at the cost of one SVD of ``[V, D]``.
    """
    x = np.asarray(vectors, dtype=np.float32)
    if components <= 0:
        return x
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    top = vt[:components]
    return x - (x @ top.T) @ top


def read_pairs(paths: Iterable[Path], index: dict[str, int]) -> np.ndarray:
    """Word pairs from constraint files (``w1 w2`` per line) as index pairs ``[P, 2]``, both directions.

    Pairs with a word outside ``index`` or of a word with itself are dropped, duplicates removed (as the
    reference code's ``load_constraints``).
    """
    found: set[tuple[int, int]] = set()
    for path in paths:
        if not path.is_file():
            raise ResourceError(
                f"counter-fitting constraint file not found: {path} (the data pack's lexical/ is incomplete; "
                "`adaptermix doctor` checks it)"
            )
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) < 2:
                continue
            a, b = index.get(parts[0]), index.get(parts[1])
            if a is not None and b is not None and a != b:
                found.update({(a, b), (b, a)})
    return np.array(sorted(found), dtype=np.int64).reshape(-1, 2)


def close_pairs(vectors: np.ndarray, rho: float, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """All directed pairs ``(i, j)``, i != j, with cosine distance <= ``rho``, and those distances.

    ``vectors`` must be unit rows. Computed block by block over the upper triangle only (``chunk`` rows
    against the rows from the block on; each pair found once, then mirrored): half the products of a full
    ``V x V`` similarity matrix, and memory of ``chunk x V`` floats.
    """
    pairs, dists = [], []
    for start in range(0, len(vectors), chunk):
        sims = vectors[start : start + chunk] @ vectors[start:].T
        rows, cols = np.nonzero(sims >= 1.0 - rho)
        keep = cols > rows  # strictly above the diagonal: i < j
        i, j = rows[keep] + start, cols[keep] + start
        d = 1.0 - sims[rows[keep], cols[keep]]
        pairs += [np.stack([i, j], axis=1), np.stack([j, i], axis=1)]
        dists += [d, d]
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.float32)
    return np.concatenate(pairs).astype(np.int64), np.concatenate(dists).astype(np.float32)


def _without(pairs: np.ndarray, drop: np.ndarray, n: int) -> np.ndarray:
    """Rows of ``pairs`` that are not rows of ``drop`` (pairs encoded as i * n + j)."""
    if len(pairs) == 0 or len(drop) == 0:
        return np.ones(len(pairs), dtype=bool)
    return ~np.isin(pairs[:, 0] * n + pairs[:, 1], drop[:, 0] * n + drop[:, 1])


def _distance_gradients(u: np.ndarray, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine distance of each pair and its gradient w.r.t. the first vector (unit vectors).

    ``d(a, b) = 1 - a.b``; the reference code's ``vector_partial_gradient`` for unit vectors is
    ``a (a.b) - b`` (the tangential part of ``-b``).
    """
    a, b = u[pairs[:, 0]], u[pairs[:, 1]]
    dots = np.einsum("ij,ij->i", a, b)
    return 1.0 - dots, a * dots[:, None] - b


def counter_fit(
    vectors: np.ndarray,
    synonyms: np.ndarray,
    antonyms: np.ndarray,
    cfg: CounterFitConfig | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Counter-fit ``vectors`` ``[V, D]`` to synonym/antonym index pairs; returns new unit vectors.

    ``synonyms`` and ``antonyms`` are ``[P, 2]`` index pairs (see :func:`read_pairs`).
    """
    cfg = cfg or CounterFitConfig()
    u = normalise(vectors)
    n = len(u)
    synonyms = synonyms[_without(synonyms, antonyms, n)]  # a pair that is both is treated as antonyms
    vsp, vsp_dist = close_pairs(u, cfg.rho) if cfg.k3 > 0 else (np.zeros((0, 2), np.int64), np.zeros(0))
    keep = _without(vsp, antonyms, n)
    vsp, vsp_dist = vsp[keep], vsp_dist[keep]
    if progress:
        progress(
            f"counter-fitting {n} words: {len(antonyms)} antonym, {len(synonyms)} synonym, {len(vsp)} VSP pairs"
        )
    # (pairs, active(distance) -> mask, signed weight): AR moves up the distance gradient, SA and VSP down.
    terms: list[tuple[np.ndarray, Callable[[np.ndarray], np.ndarray], float]] = [
        (antonyms, lambda d: d < cfg.delta, cfg.k1),
        (synonyms, lambda d: d > cfg.gamma, -cfg.k2),
        (vsp, lambda d: d > vsp_dist, -cfg.k3),
    ]
    for epoch in range(cfg.epochs):
        targets, updates = [], []
        for pairs, active, weight in terms:
            if len(pairs) == 0 or weight == 0:
                continue
            dist, grad = _distance_gradients(u, pairs)
            on = active(dist)
            targets.append(pairs[on, 0])
            updates.append(weight * grad[on])
        if not targets:
            break
        idx = np.concatenate(targets)
        total = np.zeros_like(u)
        np.add.at(total, idx, np.concatenate(updates))
        count = np.bincount(idx, minlength=n).astype(np.float32)
        # The reference code scales each word's summed update by its number of active terms.
        u = normalise(u + total / np.maximum(count, 1.0)[:, None])
        if progress:
            progress(f"counter-fitting epoch {epoch + 1}/{cfg.epochs}: {len(idx)} active terms")
    return u
