"""Counter-fitting (Mrkšić et al. 2016) on small hand-made vector sets, and its cached build."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adaptermix.attacks.counterfit import (
    CounterFitConfig,
    all_but_the_top,
    close_pairs,
    counter_fit,
    normalise,
    read_pairs,
)
from adaptermix.attacks.resources import counter_fitted_cache_ok, counter_fitted_vectors, select_vocabulary
from adaptermix.config import validate
from adaptermix.errors import ConfigError, ResourceError

WORDS = ["happy", "glad", "hot", "cold", "red", "crimson", "table", "chair"]


def hand_vectors() -> np.ndarray:
    """happy/glad are synonyms but far apart; hot/cold antonyms but close; red/crimson close neighbours."""
    return np.array(
        [
            [1.0, 0.0, 0.0, 0.0],  # happy
            [0.3, 1.0, 0.0, 0.0],  # glad
            [0.0, 0.0, 1.0, 0.2],  # hot
            [0.0, 0.1, 1.0, 0.3],  # cold
            [0.0, 0.0, 0.2, 1.0],  # red
            [0.0, 0.05, 0.25, 1.0],  # crimson
            [0.5, 0.5, 0.5, 0.0],  # table
            [0.5, 0.4, 0.6, 0.1],  # chair
        ],
        dtype=np.float32,
    )


def cos(v: np.ndarray, a: str, b: str) -> float:
    u = normalise(v)
    return float(u[WORDS.index(a)] @ u[WORDS.index(b)])


def pairs(*names: tuple[str, str]) -> np.ndarray:
    out = []
    for a, b in names:
        out += [(WORDS.index(a), WORDS.index(b)), (WORDS.index(b), WORDS.index(a))]
    return np.array(out, dtype=np.int64)


def test_synonyms_attract_antonyms_repel_neighbours_stay() -> None:
    v = hand_vectors()
    fitted = counter_fit(v, pairs(("happy", "glad")), pairs(("hot", "cold")))
    assert np.allclose(np.linalg.norm(fitted, axis=1), 1.0, atol=1e-3)
    assert cos(fitted, "happy", "glad") > cos(v, "happy", "glad") + 0.3
    assert cos(fitted, "hot", "cold") < cos(v, "hot", "cold") - 0.3
    # red/crimson are within rho (VSP) and in no constraint: they stay (nearly) as close as they were.
    assert cos(fitted, "red", "crimson") > cos(v, "red", "crimson") - 0.02


def test_more_epochs_move_further_and_zero_weights_change_nothing() -> None:
    v = hand_vectors()
    syn, ant = pairs(("happy", "glad")), pairs(("hot", "cold"))
    few = counter_fit(v, syn, ant, CounterFitConfig(epochs=2))
    many = counter_fit(v, syn, ant, CounterFitConfig(epochs=20))
    assert cos(many, "happy", "glad") > cos(few, "happy", "glad")
    assert cos(many, "hot", "cold") < cos(few, "hot", "cold")
    still = counter_fit(v, syn, ant, CounterFitConfig(k1=0, k2=0, k3=0))
    np.testing.assert_allclose(still, normalise(v), atol=1e-6)


def test_a_pair_listed_as_synonym_and_antonym_is_treated_as_antonyms() -> None:
    v = hand_vectors()
    both = pairs(("hot", "cold"))
    fitted = counter_fit(v, both, both)
    assert cos(fitted, "hot", "cold") < cos(v, "hot", "cold")


def test_read_pairs_symmetric_in_vocabulary_without_self_pairs(tmp_path: Path) -> None:
    f = tmp_path / "syn.txt"
    f.write_text(
        "happy glad\nglad happy\nhappy happy\nhappy unknown\n\nred crimson extra\n", encoding="utf-8"
    )
    index = {w: i for i, w in enumerate(WORDS)}
    got = {tuple(p) for p in read_pairs([f], index).tolist()}
    assert got == {(0, 1), (1, 0), (4, 5), (5, 4)}
    with pytest.raises(ResourceError, match="constraint file not found"):
        read_pairs([tmp_path / "missing.txt"], index)


def test_close_pairs_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    u = normalise(rng.normal(size=(60, 3)))
    got_pairs, got_d = close_pairs(u, rho=0.1, chunk=7)
    sims = u @ u.T
    want = {(i, j) for i in range(60) for j in range(60) if i != j and 1 - sims[i, j] <= 0.1}
    assert {tuple(p) for p in got_pairs.tolist()} == want
    np.testing.assert_allclose(got_d, 1 - sims[got_pairs[:, 0], got_pairs[:, 1]], atol=1e-6)


def test_all_but_the_top_removes_mean_and_top_direction() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 5)).astype(np.float32) + np.array([5, 0, 0, 0, 0], dtype=np.float32)
    x[:, 1] *= 10  # a dominant direction
    y = all_but_the_top(x, 1)
    assert np.abs(y.mean(axis=0)).max() < 1e-3
    assert np.abs(y[:, 1]).max() < 0.5 * np.abs(x[:, 1] - x[:, 1].mean()).max()
    np.testing.assert_array_equal(all_but_the_top(x, 0), x)


def test_config_is_strict_and_checks_vocabulary() -> None:
    assert CounterFitConfig().model_dump()["epochs"] == 20
    with pytest.raises(ConfigError, match="max_words"):
        validate(CounterFitConfig, {"vocabulary": "glove"})
    with pytest.raises(ConfigError, match="unknown key"):
        validate(CounterFitConfig, {"epoch": 3})


def make_lexical(root: Path) -> Path:
    lex = root / "lexical"
    lex.mkdir(parents=True)
    (lex / "ppdb_synonyms.txt").write_text("happy glad\nred crimson\n", encoding="utf-8")
    (lex / "ppdb_antonyms.txt").write_text("hot cold\n", encoding="utf-8")
    (lex / "wordnet_antonyms.txt").write_text("happy sad\n", encoding="utf-8")
    (lex / "vocabulary.txt").write_text("\n".join(["zebra", *WORDS]) + "\n", encoding="utf-8")
    return lex


def test_cached_build_writes_safetensors_and_json_and_reloads(tmp_path: Path) -> None:
    make_lexical(tmp_path / "data")
    glove = (["the", *WORDS], np.vstack([np.ones((1, 4), np.float32), hand_vectors()]))
    cfg = CounterFitConfig(remove_components=0)
    first = counter_fitted_vectors(cfg, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", glove=glove)
    assert first.words == tuple(WORDS)  # vocabulary.txt ∩ GloVe, GloVe order ("the" and "zebra" out)
    (folder,) = (tmp_path / "cache" / "counterfit").iterdir()
    assert {p.name for p in folder.iterdir()} == {"vectors.safetensors", "vocab.json", "meta.json"}
    assert json.loads((folder / "vocab.json").read_text()) == WORDS
    again = counter_fitted_vectors(cfg, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", glove=glove)
    np.testing.assert_array_equal(first.vectors, again.vectors)
    assert first.cosine("happy", "glad") > cos(hand_vectors(), "happy", "glad")
    other = CounterFitConfig(remove_components=0, epochs=3)
    counter_fitted_vectors(other, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache", glove=glove)
    assert len(list((tmp_path / "cache" / "counterfit").iterdir())) == 2  # another config, another entry


@pytest.mark.parametrize("damage", ["truncated-vectors", "missing-vocab", "old-meta", "no-meta"])
def test_a_half_written_or_damaged_counter_fitted_cache_is_rebuilt(tmp_path: Path, damage: str) -> None:
    make_lexical(tmp_path / "data")
    glove = (["the", *WORDS], np.vstack([np.ones((1, 4), np.float32), hand_vectors()]))
    cfg = CounterFitConfig(remove_components=0)
    kw = {"data_dir": tmp_path / "data", "cache_dir": tmp_path / "cache", "glove": glove}
    first = counter_fitted_vectors(cfg, **kw)
    (folder,) = (tmp_path / "cache" / "counterfit").iterdir()
    assert counter_fitted_cache_ok(folder)
    if damage == "truncated-vectors":
        data = (folder / "vectors.safetensors").read_bytes()
        (folder / "vectors.safetensors").write_bytes(data[: len(data) // 2])
    elif damage == "missing-vocab":
        (folder / "vocab.json").unlink()
    elif damage == "old-meta":  # written before meta.json listed its files: not trusted
        meta = json.loads((folder / "meta.json").read_text())
        (folder / "meta.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "sizes"}))
    else:  # killed before meta.json (written last)
        (folder / "meta.json").unlink()
    assert not counter_fitted_cache_ok(folder)
    again = counter_fitted_vectors(cfg, **kw)
    np.testing.assert_array_equal(first.vectors, again.vectors)
    assert counter_fitted_cache_ok(folder)


def test_missing_vocabulary_file_names_the_fix(tmp_path: Path) -> None:
    lex = make_lexical(tmp_path)
    (lex / "vocabulary.txt").unlink()
    with pytest.raises(ResourceError, match="adaptermix doctor"):
        select_vocabulary(["a"], lex, CounterFitConfig())


def test_vocabulary_selection_caps_by_frequency(tmp_path: Path) -> None:
    lex = make_lexical(tmp_path)
    glove_words = ["the", *WORDS]
    assert select_vocabulary(glove_words, lex, CounterFitConfig(max_words=3)) == [1, 2, 3]
    assert select_vocabulary(glove_words, lex, CounterFitConfig(vocabulary="glove", max_words=2)) == [0, 1]


def test_user_counter_fitted_vectors_file_is_read(tmp_path: Path) -> None:
    f = tmp_path / "counter-fitted-vectors.txt"
    f.write_text("good 0.1 0.2 0.3\nnice 0.1 0.25 0.3\nbad -0.1 -0.2 0.3\n", encoding="utf-8")
    vec = counter_fitted_vectors(path=f)
    assert vec.words == ("good", "nice", "bad") and vec.vectors.shape == (3, 3)
    assert vec.cosine("good", "nice") > vec.cosine("good", "bad")
    with pytest.raises(ResourceError, match="word-vector file not found"):
        counter_fitted_vectors(path=tmp_path / "nope.txt")
