"""Dataset analyses (Fig. 2): centroid similarity with an injected encoder, LDA topics, study writers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adaptermix.analysis import (
    centroid_similarity,
    dataset_similarity,
    dataset_topics,
    document_text,
    lda_topics,
    sample_documents,
    write_similarity,
    write_topics,
)
from adaptermix.data.schema import Example
from adaptermix.pipeline.config import StudyConfig
from helpers import TOY_PACK

UNIT = {"a": [1.0, 0.0], "b": [0.0, 1.0]}


def encode_letters(texts: list[str]) -> np.ndarray:
    """A fake sentence encoder: the sum of the unit vectors of the letters a / b in the text."""
    return np.array([np.sum([UNIT[c] for c in t if c in UNIT] or [[0.0, 0.0]], axis=0) for t in texts])


def test_similarity_of_centroids_by_hand() -> None:
    got = dataset_similarity({"x": ["a", "a"], "y": ["b"], "z": ["a", "b"]}, encode_letters)
    assert got["names"] == ["x", "y", "z"] and got["n_docs"] == {"x": 2, "y": 1, "z": 2}
    expected = [[1, 0, 2**-0.5], [0, 1, 2**-0.5], [2**-0.5, 2**-0.5, 1]]
    np.testing.assert_allclose(got["matrix"], expected, atol=1e-12)


def test_similarity_samples_at_most_n_docs_with_a_seed() -> None:
    seen: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        seen.append(list(texts))
        return encode_letters(texts)

    docs = [f"doc {i} " + "ab"[i % 2] for i in range(50)]
    dataset_similarity({"d": docs}, encode, n_docs=10, seed=3)
    dataset_similarity({"d": docs}, encode, n_docs=10, seed=3)
    assert len(seen[0]) == 10 and seen[0] == seen[1], "same seed, same sample"
    assert sample_documents(docs, 10, seed=4) != seen[0]
    assert sample_documents(["", " ", "x"], 5) == ["x"], "empty documents are dropped"
    np.testing.assert_allclose(centroid_similarity(np.zeros((2, 3))), 0.0)


def test_document_text_joins_pairs() -> None:
    assert document_text(Example("a cat", 0)) == "a cat"
    assert document_text(Example("a cat", 0, "sat down")) == "a cat sat down"


SPORT = "football match goal team player referee stadium league".split()
FOOD = "recipe oven flour sugar butter bake dough kitchen".split()


def _corpus(n: int = 40) -> list[str]:
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(SPORT if i % 2 else FOOD, 12)) + " the and of" for i in range(n)]


def test_lda_topics_separate_two_vocabularies() -> None:
    topics = lda_topics(_corpus(), n_topics=2, top_words=5, seed=0)
    assert len(topics) == 2 and all(len(t) == 5 for t in topics)
    assert {
        frozenset(set(t) <= set(SPORT) for t in topics),
        frozenset(set(t) <= set(FOOD) for t in topics),
    } == {frozenset({True, False})}, "each topic's top words come from one vocabulary"
    assert not {"the", "and", "of"} & {w for t in topics for w in t}, "English stop words removed"
    assert lda_topics(_corpus(), n_topics=2, top_words=5, seed=0) == topics, "seeded"


def test_dataset_topics_records_a_skipped_dataset() -> None:
    got = dataset_topics({"ok": _corpus(), "stop": ["the and of", "it is"]}, n_topics=2, top_words=3)
    assert len(got["datasets"]["ok"]["topics"]) == 2
    assert "vocabulary" in got["datasets"]["stop"]["skipped"] and got["datasets"]["stop"]["n_docs"] == 2
    assert got["params"]["n_topics"] == 2 and got["params"]["stop_words"] == "english"


def _study(tmp_path: Path) -> StudyConfig:
    return StudyConfig(
        output_dir=str(tmp_path),
        domains=["toy_sentiment", "toy_nli", "toy_sts"],  # single, pair, pair + regression
        data={"data_dir": str(TOY_PACK)},
        analysis={"docs_per_dataset": 20, "n_topics": 3, "top_words": 4},
    )


def test_write_similarity_and_topics_from_the_study_data(tmp_path: Path) -> None:
    cfg = _study(tmp_path)
    path = write_similarity(tmp_path, cfg, encode=encode_letters)
    sim = json.loads(path.read_text())
    assert path == tmp_path / "analysis" / "similarity.json"
    assert sim["names"] == ["toy_sentiment", "toy_nli", "toy_sts"]
    assert all(n == 20 for n in sim["n_docs"].values()), "capped at docs_per_dataset"
    assert np.allclose(np.diag(sim["matrix"]), 1.0) and "USE" in sim["note"]

    path = write_topics(tmp_path, cfg)
    topics = json.loads(path.read_text())
    assert set(topics["datasets"]) == set(sim["names"])
    assert all(len(d["topics"]) == 3 and len(d["topics"][0]) == 4 for d in topics["datasets"].values())
    before = path.stat().st_mtime_ns
    assert write_topics(tmp_path, cfg) == path and path.stat().st_mtime_ns == before, "up to date: skipped"
    bigger = cfg.model_copy(update={"analysis": cfg.analysis.model_copy(update={"top_words": 5})})
    write_topics(tmp_path, bigger)
    assert len(json.loads(path.read_text())["datasets"]["toy_nli"]["topics"][0]) == 5, (
        "changed inputs: redone"
    )


@pytest.mark.slow
def test_packaged_minilm_sentence_encoder(minilm_ready: Path) -> None:
    from adaptermix.analysis import load_sentence_encoder

    encode = load_sentence_encoder()
    emb = encode(["a good film", "a bad film"])
    assert emb.shape == (2, 384)
    got = dataset_similarity(
        {"pos": ["a great movie", "loved it"], "fin": ["shares fell 3%", "profit rose"]}, encode
    )
    m = np.array(got["matrix"])
    assert np.allclose(np.diag(m), 1.0) and m[0, 1] < 0.9
