"""Word vectors as a value, their nearest-neighbour table, and their on-disk formats.

A :class:`WordVectors` is a vocabulary plus unit-length vectors. Its :class:`NeighbourTable` holds, for
every word, the ``n`` nearest words by cosine with cosine >= ``min_cos`` (TextFooler: n = 50,
min_cos = 0.8 in the paper) — computed once in blocked matrix products, then looked up per word.

Formats: our cache is ``vectors.safetensors`` (one float32 tensor) + ``vocab.json`` (the word list), both
written atomically; the standard ``counter-fitted-vectors.txt`` (``word v1 v2 ...`` per line) is read too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from adaptermix.core.errors import ResourceError
from adaptermix.core.hashing import short_hash
from adaptermix.core.io import atomic_dir, atomic_path

VECTORS_FILE = "vectors.safetensors"
VOCAB_FILE = "vocab.json"


@dataclass(frozen=True)
class WordVectors:
    """A vocabulary and its vectors ``[V, D]`` (rows unit-normalised by :meth:`create`)."""

    words: tuple[str, ...]
    vectors: np.ndarray

    @classmethod
    def create(
        cls, words: list[str] | tuple[str, ...], vectors: np.ndarray, normalise: bool = True
    ) -> WordVectors:
        """Validate shapes and scale rows to unit length (``normalise=False``: keep the bytes as given)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(words) != len(vectors):
            raise ValueError(f"{len(words)} words but vectors of shape {vectors.shape}")
        if normalise:
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return cls(tuple(words), vectors)

    @cached_property
    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    def cosine(self, a: str, b: str) -> float:
        return float(self.vectors[self.index[a]] @ self.vectors[self.index[b]])

    def fingerprint(self) -> str:
        """SHA-256 (first 16 hex) of the words and vector bytes: the key of caches derived from them."""
        return short_hash(["\n".join(self.words), np.ascontiguousarray(self.vectors).tobytes()])

    def write_files(self, folder: Path) -> None:
        """Write ``vectors.safetensors`` + ``vocab.json`` into the existing ``folder`` (e.g. an atomic_dir)."""
        save_file({"vectors": np.ascontiguousarray(self.vectors)}, str(folder / VECTORS_FILE))
        (folder / VOCAB_FILE).write_text(json.dumps(list(self.words), ensure_ascii=False), encoding="utf-8")

    def save(self, folder: Path) -> None:
        """Write the vectors into ``folder`` as one atomic directory swap."""
        with atomic_dir(folder) as tmp:
            self.write_files(tmp)

    @classmethod
    def load(cls, folder: Path) -> WordVectors:
        try:
            vectors = load_file(str(folder / VECTORS_FILE))["vectors"]
            words = json.loads((folder / VOCAB_FILE).read_text(encoding="utf-8"))
        except (OSError, KeyError, ValueError) as exc:
            raise ResourceError(f"cannot read word vectors in {folder}: {exc}") from None
        # Saved vectors are already unit rows: keep their exact bytes, so the fingerprint (the key of the
        # neighbour cache) is the same as when they were built.
        return cls.create(words, vectors, normalise=False)

    @classmethod
    def from_text_file(cls, path: Path) -> WordVectors:
        """Read ``word v1 v2 ...`` lines (e.g. ``counter-fitted-vectors.txt``, ``glove.6B.50d.txt``)."""
        if not path.is_file():
            raise ResourceError(f"word-vector file not found: {path}")
        words, rows = [], []
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                parts = line.rstrip().split(" ")
                if len(parts) < 2:
                    continue
                try:
                    rows.append(np.asarray(parts[1:], dtype=np.float32))
                except ValueError:
                    raise ResourceError(f"{path}:{lineno}: not a 'word v1 v2 ...' line") from None
                words.append(parts[0])
        if not rows or len({len(r) for r in rows}) != 1:
            raise ResourceError(f"{path}: no vectors, or vectors of different lengths")
        return cls.create(words, np.stack(rows))


def compute_neighbours(
    vectors: np.ndarray, n: int, min_cos: float, chunk: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``[V, n]`` (int32, -1 = none) and cosines ``[V, n]`` of each row's nearest other rows.

    Rows must be unit length. Only neighbours with cosine >= ``min_cos`` are kept, nearest first (ties in
    index order). Blocked: ``chunk`` rows against the whole matrix at a time; the threshold is applied
    before sorting, so only the few close pairs of each block are sorted.
    """
    total = len(vectors)
    idx = np.full((total, n), -1, dtype=np.int32)
    sims = np.zeros((total, n), dtype=np.float32)
    for start in range(0, total, chunk):
        block = vectors[start : start + chunk] @ vectors.T
        rows = np.arange(len(block))
        block[rows, rows + start] = -np.inf  # a word is not its own neighbour
        r, c = np.nonzero(block >= min_cos)
        s = block[r, c]
        order = np.lexsort((c, -s, r))  # by row, then nearest first, then index
        r, c, s = r[order], c[order], s[order]
        rank = np.arange(len(r)) - np.searchsorted(r, r)  # position within its row
        keep = rank < n
        idx[r[keep] + start, rank[keep]] = c[keep]
        sims[r[keep] + start, rank[keep]] = s[keep]
    return idx, sims


@dataclass(frozen=True)
class NeighbourTable:
    """Each word's nearest neighbours (cosine >= ``min_cos``), nearest first."""

    vectors: WordVectors
    indices: np.ndarray
    sims: np.ndarray
    min_cos: float

    @classmethod
    def build(cls, vectors: WordVectors, n: int = 50, min_cos: float = 0.8) -> NeighbourTable:
        idx, sims = compute_neighbours(vectors.vectors, n, min_cos)
        return cls(vectors, idx, sims, min_cos)

    @classmethod
    def cached(cls, vectors: WordVectors, n: int, min_cos: float, folder: Path | None) -> NeighbourTable:
        """:meth:`build`, memoised in ``folder`` under the vectors' fingerprint (``None``: no cache)."""
        if folder is None:
            return cls.build(vectors, n, min_cos)
        path = folder / f"neighbours-{vectors.fingerprint()}-n{n}-c{min_cos:g}.safetensors"
        if path.is_file():
            try:
                data = load_file(str(path))
                return cls(vectors, data["indices"], data["sims"], min_cos)
            except (OSError, KeyError, ValueError):
                pass  # unreadable cache entry: rebuild it
        table = cls.build(vectors, n, min_cos)
        with atomic_path(path) as tmp:
            save_file({"indices": table.indices, "sims": table.sims}, str(tmp))
        return table

    def lookup(self, word: str) -> list[tuple[str, float]]:
        """``(neighbour, cosine)`` pairs of ``word`` (exact, lower-case vocabulary), nearest first."""
        i = self.vectors.index.get(word)
        if i is None:
            return []
        row, sims = self.indices[i], self.sims[i]
        return [(self.vectors.words[j], float(s)) for j, s in zip(row, sims, strict=True) if j >= 0]
