"""AdapterSoup's selection: the similarity and clustering rules, input errors, the embedding cache and
reading a pool's training texts (fake encoder and synthetic embeddings only; no model is loaded)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from adaptermix.errors import ConfigError
from adaptermix.recommend.adaptersoup import (
    CACHE_KEY,
    Selection,
    cached_domain_embeddings,
    domain_centroids,
    embed_domains,
    pool_texts,
    select_by_clustering,
    select_by_similarity,
    select_by_similarity_matrix,
)


def fake_encode(texts: list[str], dim: int = 16) -> np.ndarray:
    """Each text -> the sum of one seeded random vector per word (seeded by the word's SHA-256)."""
    out = np.zeros((len(texts), dim))
    for i, text in enumerate(texts):
        for word in text.split():
            seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little")
            out[i] += np.random.default_rng(seed).standard_normal(dim)
    return out


def at_cosine(c: float) -> np.ndarray:
    """A 2-D vector at cosine ``c`` to (1, 0)."""
    return np.array([c, np.sqrt(1.0 - c * c)])


def hand_centroids() -> dict[str, np.ndarray]:
    cos = {"t": 1.0, "b": 0.9, "c": 0.8, "tie_z": 0.5, "tie_a": 0.5, "d": 0.3, "e": 0.2, "low": 0.1}
    out = {n: at_cosine(c) * (i + 1) for i, (n, c) in enumerate(cos.items())}  # norms do not matter
    out["tie_a"] = out["tie_z"].copy()  # an exact tie, broken by name
    return out


# ---------------------------------------------------------------------------------------------------
# Similarity


def test_similarity_orders_caps_and_puts_the_target_first() -> None:
    sel = select_by_similarity(hand_centroids(), "t")
    assert sel.adapters == ("t", "b", "c", "tie_a", "tie_z")  # cap of 5 including the target
    assert sel.method == "similarity" and "t" not in sel.scores
    assert sel.scores["b"] == pytest.approx(0.9) and sel.scores["low"] == pytest.approx(0.1)
    assert sel.ranking() == ["b", "c", "tie_a", "tie_z", "d", "e", "low"]


def test_similarity_threshold_excludes_a_domain_at_cosine_0_1() -> None:
    sel = select_by_similarity(hand_centroids(), "t", max_adapters=20)
    assert sel.adapters == ("t", "b", "c", "tie_a", "tie_z", "d", "e")
    assert select_by_similarity(hand_centroids(), "t", max_adapters=20, threshold=0.05).adapters[-1] == "low"
    assert select_by_similarity(hand_centroids(), "t", max_adapters=1).adapters == ("t",)


def test_similarity_ties_do_not_depend_on_mapping_order() -> None:
    cents = hand_centroids()
    reverse = dict(reversed(list(cents.items())))
    assert select_by_similarity(reverse, "t") == select_by_similarity(cents, "t")


def test_matrix_variant_agrees_with_centroids() -> None:
    cents = hand_centroids()
    names = list(cents)
    unit = np.stack([v / np.linalg.norm(v) for v in cents.values()])
    for target in ("t", "c", "low"):
        a = select_by_similarity(cents, target, max_adapters=4)
        b = select_by_similarity_matrix(unit @ unit.T, names, target, max_adapters=4)
        assert a.adapters == b.adapters and a.scores == pytest.approx(b.scores)


def test_matrix_threshold_is_strict() -> None:
    sim = np.array([[1.0, 0.15, 0.16], [0.15, 1.0, 0.0], [0.16, 0.0, 1.0]])
    assert select_by_similarity_matrix(sim, ["t", "x", "y"], "t").adapters == ("t", "y")


# ---------------------------------------------------------------------------------------------------
# Clustering


def blobs(mix: dict[str, float], n: int = 100, dim: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """Six domains as well-separated Gaussian blobs; the target "d0" draws ``mix`` fractions of its
    texts from other domains' blobs and the rest from its own."""
    rng = np.random.default_rng(seed)
    names = [f"d{i}" for i in range(6)]
    means = {name: 10.0 * np.eye(dim)[i] for i, name in enumerate(names)}
    out = {name: means[name] + 0.5 * rng.standard_normal((n, dim)) for name in names}
    parts, used = [], 0
    for other, frac in mix.items():
        k = round(frac * n)
        parts.append(means[other] + 0.5 * rng.standard_normal((k, dim)))
        used += k
    out["d0"] = np.concatenate([means["d0"] + 0.5 * rng.standard_normal((n - used, dim)), *parts])
    return out


def test_clustering_selects_the_blended_domain_only() -> None:
    emb = blobs({"d3": 0.4})
    sel = select_by_clustering(emb, "d0", seed=0)
    assert sel.adapters == ("d0", "d3") and sel.method == "clustering"
    assert sel.scores["d3"] == pytest.approx(0.4)
    assert {n: s for n, s in sel.scores.items() if n != "d3"} == {f"d{i}": 0.0 for i in (1, 2, 4, 5)}
    assert select_by_clustering(emb, "d0", seed=0) == sel  # reproducible for a seed
    assert select_by_clustering(dict(reversed(list(emb.items()))), "d0", seed=0) == sel


def test_clustering_min_share_excludes_a_5_percent_domain() -> None:
    emb = blobs({"d2": 0.10, "d4": 0.05})
    sel = select_by_clustering(emb, "d0")
    assert sel.adapters == ("d0", "d2") and sel.scores["d4"] == pytest.approx(0.05)
    assert select_by_clustering(emb, "d0", min_share=0.04).adapters == ("d0", "d2", "d4")
    assert select_by_clustering(emb, "d0", min_share=0.04, max_adapters=2).adapters == ("d0", "d2")


# ---------------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: select_by_similarity(hand_centroids(), "nope"), "unknown target 'nope'"),
        (lambda: select_by_similarity({}, "t"), "no domains given"),
        (lambda: select_by_similarity({"t": np.ones(2), "x": np.ones(3)}, "t"), "centroid of 'x'"),
        (lambda: select_by_similarity(hand_centroids(), "t", max_adapters=0), "max_adapters must be at least 1"),
        (lambda: select_by_similarity(hand_centroids(), "t", threshold=1.5), "threshold must lie in [-1, 1]"),
        (lambda: select_by_similarity_matrix(np.eye(2), ["t", "x", "y"], "t"), "similarity matrix has shape"),
        (lambda: select_by_clustering({}, "t"), "no domain embeddings given"),
        (lambda: select_by_clustering({"t": np.ones((3, 2)), "x": np.ones((3, 4))}, "t"), "embeddings of 'x'"),
        (lambda: select_by_clustering({"t": np.ones((0, 2))}, "t"), "embeddings of 't'"),
        (lambda: select_by_clustering(blobs({}), "x9"), "unknown target 'x9'"),
        (lambda: select_by_clustering(blobs({}), "d0", min_share=0.0), "min_share must lie in (0, 1]"),
        (lambda: select_by_clustering(blobs({}), "d0", min_share=1.5), "min_share must lie in (0, 1]"),
        (lambda: select_by_clustering(blobs({}), "d0", max_adapters=0), "max_adapters must be at least 1"),
        (lambda: select_by_clustering(blobs({}), "d0", covariance_type="round"), "Gaussian mixture failed"),
        (lambda: embed_domains({"t": []}, fake_encode), "domain 't' has no texts"),
    ],
)
def test_errors_are_one_line(call, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        call()
    assert message in str(info.value) and "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------------
# Embedding and the cache


TEXTS = {"a": ["good film", "great plot"], "b": ["the cat sat", "on the mat", "a dog"]}


def test_embed_domains_and_centroids() -> None:
    emb = embed_domains(TEXTS, fake_encode)
    assert {n: e.shape for n, e in emb.items()} == {"a": (2, 16), "b": (3, 16)}
    assert all(e.dtype == np.float32 for e in emb.values())
    np.testing.assert_allclose(domain_centroids(emb)["b"], emb["b"].astype(np.float64).mean(axis=0))


def test_cache_round_trip_and_invalidation(tmp_path: Path) -> None:
    calls: list[int] = []

    def counting(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return fake_encode(texts)

    path = tmp_path / "emb.safetensors"
    first = cached_domain_embeddings(path, TEXTS, counting, encoder_name="fake")
    assert len(calls) == 2 and path.is_file()
    with safe_open(str(path), framework="numpy") as fh:
        assert len(fh.metadata()[CACHE_KEY]) == 64
    again = cached_domain_embeddings(path, TEXTS, counting, encoder_name="fake")
    assert len(calls) == 2 and list(again) == ["a", "b"]
    for n in TEXTS:
        np.testing.assert_array_equal(again[n], first[n])
        assert again[n].dtype == np.float32
    cached_domain_embeddings(path, {**TEXTS, "a": ["good film"]}, counting, encoder_name="fake")
    assert len(calls) == 4  # other texts -> recomputed
    cached_domain_embeddings(path, {**TEXTS, "a": ["good film"]}, counting, encoder_name="other")
    assert len(calls) == 6  # another encoder -> recomputed
    path.write_bytes(b"not a safetensors file")
    cached_domain_embeddings(path, TEXTS, counting, encoder_name="fake")
    assert len(calls) == 8  # damaged -> recomputed and rewritten
    cached_domain_embeddings(path, TEXTS, counting, encoder_name="fake")
    assert len(calls) == 8


# ---------------------------------------------------------------------------------------------------
# A pool's training texts


def write_pack(root: Path, name: str, topic: str) -> None:
    """A tiny data pack dataset whose split files say which split a text came from."""
    d = root / name
    d.mkdir(parents=True)
    sizes = {"train": 20, "validation": 4, "test": 6}
    manifest = {"name": name, "task": "single", "problem": "classification", "label_names": ["neg", "pos"],
                "metric": "accuracy", "splits": sizes}
    (d / "dataset.json").write_text(json.dumps(manifest))
    for split, n in sizes.items():
        rows = [json.dumps({"text": f"{split} {topic} {i}", "label": i % 2}) for i in range(n)]
        (d / f"{split}.jsonl").write_text("\n".join(rows) + "\n")


def test_pool_texts_reads_the_train_split_only(tmp_path: Path) -> None:
    from helpers import make_adapter
    from tiny import tiny_encoder

    pack = tmp_path / "pack"
    write_pack(pack, "films", "movie plot")
    write_pack(pack, "pets", "cat dog")
    enc = tiny_encoder()
    dirs = {
        # recorded at another (absent) root: data_dir redirects it; the training cap is ignored
        "films": make_adapter(tmp_path / "films", enc, data={"name": "films", "data_dir": str(tmp_path / "gone"),
                                                              "max_train": 3, "max_test": 2}),
        "pets": make_adapter(tmp_path / "pets", enc, data={"name": "pets", "data_dir": str(tmp_path / "gone")}),
    }
    texts = pool_texts(dirs, n_docs=8, data_dir=str(pack))
    assert list(texts) == ["films", "pets"] and all(len(t) == 8 for t in texts.values())
    assert all(t.startswith("train ") for ts in texts.values() for t in ts)
    assert all("movie" in t for t in texts["films"]) and all("cat" in t for t in texts["pets"])
    assert pool_texts(dirs, n_docs=8, data_dir=str(pack)) == texts  # seeded
    assert len(pool_texts(dirs, n_docs=50, data_dir=str(pack))["films"]) == 20
    sel = select_by_similarity(domain_centroids(embed_domains(texts, fake_encode)), "pets")
    assert isinstance(sel, Selection) and sel.adapters[0] == "pets"
