"""Fig. 2b / Tables 4-16: LDA topics of each dataset, as lists of top words.

scikit-learn's ``CountVectorizer`` (English stop words) + ``LatentDirichletAllocation`` (seeded), as in
the paper (10 topics, 15 words each). To stay fast on a CPU the defaults are deliberately small and
differ from a full LDA run: at most 1,000 sampled documents per dataset, a 2,000-word vocabulary (the
most frequent words), and 10 passes of batch variational Bayes. A dataset too small or too uniform for a
vocabulary is recorded as skipped with the reason instead of failing the study.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adaptermix.analysis.documents import inputs_digest, load_study_documents, sample_documents, up_to_date
from adaptermix.core.io import atomic_write_json

N_TOPICS = 10
TOP_WORDS = 15
MAX_DOCS = 1000
MAX_FEATURES = 2000
MAX_ITER = 10
# Tokens of at least two letters (scikit-learn's default also keeps numbers, which make poor topic words).
TOKEN_PATTERN = r"(?u)\b[^\W\d_][^\W\d_]+\b"


def lda_topics(
    docs: Sequence[str],
    n_topics: int = N_TOPICS,
    top_words: int = TOP_WORDS,
    seed: int = 0,
    max_features: int = MAX_FEATURES,
    max_iter: int = MAX_ITER,
) -> list[list[str]]:
    """Top ``top_words`` words of each of ``n_topics`` LDA topics of ``docs`` (topics in model order).

    Raises ``ValueError`` when the documents leave no vocabulary (e.g. only stop words).
    """
    from sklearn.decomposition import LatentDirichletAllocation
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(
        stop_words="english", max_features=max_features, token_pattern=TOKEN_PATTERN, lowercase=True
    )
    counts = vectorizer.fit_transform(list(docs))
    vocab = np.asarray(vectorizer.get_feature_names_out())
    lda = LatentDirichletAllocation(
        n_components=n_topics, max_iter=max_iter, learning_method="batch", random_state=seed
    )
    lda.fit(counts)
    # argsort of the topic-word weights, descending; ties broken by the vocabulary order (stable sort).
    order = np.argsort(-lda.components_, axis=1, kind="stable")[:, :top_words]
    return [vocab[row].tolist() for row in order]


def dataset_topics(
    datasets: Mapping[str, Sequence[str]],
    n_topics: int = N_TOPICS,
    top_words: int = TOP_WORDS,
    max_docs: int = MAX_DOCS,
    seed: int = 0,
) -> dict[str, Any]:
    """``{"params", "datasets": {name: {"n_docs", "topics"} | {"n_docs", "skipped"}}}``."""
    out: dict[str, Any] = {}
    for name, all_docs in datasets.items():
        docs = sample_documents(all_docs, max_docs, seed)
        try:
            out[name] = {"n_docs": len(docs), "topics": lda_topics(docs, n_topics, top_words, seed)}
        except ValueError as exc:  # empty vocabulary: too few or only stop-word documents
            out[name] = {"n_docs": len(docs), "skipped": " ".join(str(exc).split())}
    params = {
        "n_topics": n_topics,
        "top_words": top_words,
        "max_docs": max_docs,
        "max_features": MAX_FEATURES,
        "max_iter": MAX_ITER,
        "seed": seed,
        "stop_words": "english",
    }
    return {"params": params, "datasets": out}


def write_topics(study_dir: str | Path, cfg: Any) -> Path:
    """LDA topics of every domain of ``cfg`` into ``{study}/analysis/topics.json`` (skipped if current)."""
    a = cfg.analysis
    n_docs = min(a.docs_per_dataset, MAX_DOCS)
    params = {
        "analysis": "topics",
        "n_docs": n_docs,
        "n_topics": a.n_topics,
        "top_words": a.top_words,
        "max_features": MAX_FEATURES,
        "max_iter": MAX_ITER,
    }
    path = Path(study_dir) / "analysis" / "topics.json"
    digest = inputs_digest(cfg, params)
    if up_to_date(path, digest):
        return path
    result = dataset_topics(load_study_documents(cfg, n_docs), a.n_topics, a.top_words, n_docs)
    result["inputs_digest"] = digest
    atomic_write_json(path, result)
    return path
