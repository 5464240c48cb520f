"""AdapterSoup's generators in sweeps: prefix subsets of a selection, thresholds, the target's validation texts
(never test), the selection recorded in the store, and the statistics and report that show it (tiny models,
a hash-based fake sentence encoder; nothing is downloaded)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from adaptermix.config import validate
from adaptermix.errors import ConfigError
from adaptermix.sweep.shards import merge
from adaptermix.sweep.soup import SoupSelection, selections_from_embeddings, target_texts
from adaptermix.sweep.spec import AdapterSoupSpec, SweepSpec, describe_expansion, expand
from adaptermix.sweep.stats import ALL, compute_stats, rule_comparison, write_stats_csv
from adaptermix.sweep.store import ResultsStore
from adaptermix.sweep.subsets import SUBSET_GENERATORS, SubsetRequest, generate_subsets
from test_adaptersoup import fake_encode

SOUP = ("adaptersoup_similarity", "adaptersoup_cluster")


# ---------------------------------------------------------------------------------------------------
# The generators


@pytest.mark.parametrize("gen", SOUP)
def test_prefix_subsets_target_first_and_deterministic(gen: str) -> None:
    req = SubsetRequest(6, 2, selections={gen: (2, 5, 0, 3)})
    subsets = generate_subsets(gen, req)
    assert subsets == [(2,), (2, 5), (0, 2, 5), (0, 2, 3, 5)]  # one per l, nested, in selection order
    assert generate_subsets(gen, req) == subsets
    assert SUBSET_GENERATORS.get(gen).tag == gen and SUBSET_GENERATORS.get(gen).needs_selection
    assert generate_subsets(gen, SubsetRequest(6, 2, selections={gen: (2,)})) == [(2,)]
    for bad, msg in (({}, "needs AdapterSoup's selection"), ({gen: (5, 2)}, "must start with the target"),
                     ({gen: (2, 9)}, "outside a pool")):
        with pytest.raises(ConfigError, match=msg):
            generate_subsets(gen, SubsetRequest(6, 2, selections=bad))


def test_expand_follows_the_recorded_selection_and_counts_are_upper_bounds() -> None:
    names = ["a", "b", "c", "d"]
    spec = validate(SweepSpec, {"pool": {n: n for n in names}, "subsets": {"generator": list(SOUP),
                                                                            "adaptersoup": {"max_adapters": 3}}})
    assert spec.subsets.adaptersoup.threshold == 0.15 and spec.subsets.adaptersoup.min_share == 0.10
    summary = describe_expansion(spec, names)
    assert summary.subsets_per_k == {1: 2, 2: 2, 3: 2} and "at most" in str(summary)
    sel = {"adaptersoup_similarity": {t: [t, *[n for n in reversed(names) if n != t][:2]] for t in names},
           "adaptersoup_cluster": {t: [t] for t in names}}
    trials = expand(spec, names, selections=sel)
    a = [t for t in trials if t.target == "a"]
    assert [(t.tag, t.subset) for t in a] == [
        ("adaptersoup_similarity", ("a",)), ("adaptersoup_similarity", ("a", "d")),
        ("adaptersoup_similarity", ("a", "c", "d")), ("adaptersoup_cluster", ("a",))]
    assert [t.key for t in expand(spec, list(reversed(names)), selections=sel)] == [t.key for t in trials]
    with pytest.raises(ConfigError, match="needs AdapterSoup's selection for 'a'"):
        expand(spec, names)
    with pytest.raises(Exception, match="threshold"):
        validate(SweepSpec, {"pool": ["a"], "subsets": {"adaptersoup": {"threshold": 2}}})


# ---------------------------------------------------------------------------------------------------
# Thresholds on embeddings


def _blob(centre: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return centre + 0.05 * rng.standard_normal((n, centre.size))


def test_selections_honour_thresholds_and_record_sources() -> None:
    rng = np.random.default_rng(0)
    eye = np.eye(6)
    train = {f"d{i}": _blob(10 * eye[i], 60, rng) for i in range(5)}
    # the target's validation texts: 70 % its own blob, 20 % d1's, 6 % d2's, 4 % d3's
    val = np.concatenate([_blob(10 * eye[0], 35, rng), _blob(10 * eye[1], 10, rng), _blob(10 * eye[2], 3, rng),
                          _blob(10 * eye[3], 2, rng)])
    params = AdapterSoupSpec()
    out = selections_from_embeddings(train, {"d0": val}, {"d0": "validation"}, SOUP, params, "fake")
    cluster = out["adaptersoup_cluster"]["d0"]
    assert cluster.adapters == ("d0", "d1") and cluster.scores["d1"] == pytest.approx(0.2)
    assert cluster.scores["d2"] == pytest.approx(0.06) and cluster.score == "share"
    assert cluster.target_texts == "validation" and cluster.n_target_texts == 50
    sim = out["adaptersoup_similarity"]["d0"]
    # cosines of the validation centroid: d1 ~0.27, d2 ~0.08, d3 ~0.05 (> 0.15 only d1)
    assert sim.adapters == ("d0", "d1") and sim.score == "cosine" and sim.scores["d2"] < 0.15 < sim.scores["d1"]
    loose = AdapterSoupSpec(threshold=0.0, min_share=0.03, max_adapters=3)
    out = selections_from_embeddings(train, {"d0": val}, {"d0": "validation"}, SOUP, loose)
    assert out["adaptersoup_similarity"]["d0"].adapters == ("d0", "d1", "d2")  # capped at 3 with the target
    assert out["adaptersoup_cluster"]["d0"].adapters == ("d0", "d1", "d2")
    again = SoupSelection.from_dict(json.loads(json.dumps(cluster.to_dict())))
    assert again == cluster


# ---------------------------------------------------------------------------------------------------
# Texts: the target's validation split, never test


def write_pack(root: Path, name: str, topic: str, splits: tuple[str, ...] = ("train", "validation", "test")) -> None:
    d = root / name
    d.mkdir(parents=True)
    sizes = {"train": 16, "validation": 6, "test": 8}
    sizes = {s: n for s, n in sizes.items() if s in splits}
    manifest = {"name": name, "task": "single", "problem": "classification", "label_names": ["neg", "pos"],
                "metric": "accuracy", "splits": sizes}
    (d / "dataset.json").write_text(json.dumps(manifest))
    for split, n in sizes.items():
        rows = [json.dumps({"text": f"{split} {topic} {['good', 'bad'][i % 2]}", "label": i % 2}) for i in range(n)]
        (d / f"{split}.jsonl").write_text("\n".join(rows) + "\n")


TOPICS = {"films": "movie film plot", "flicks": "movie film actor", "pets": "cat dog mat", "kits": "cat dog sat"}


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from helpers import make_adapter
    from tiny import tiny_encoder

    root = tmp_path_factory.mktemp("soup")
    enc = tiny_encoder("bert")
    out = {}
    for i, (name, topic) in enumerate(TOPICS.items()):
        splits = ("train", "test") if name == "kits" else ("train", "validation", "test")  # kits: no validation
        write_pack(root / "pack", name, topic, splits)
        out[name] = make_adapter(root / "pool" / name, enc, seed=i, scale=0.3,
                                 data={"name": name, "data_dir": str(root / "pack")})
    return out


def test_target_texts_validation_else_train_never_test(pool: dict[str, Path]) -> None:
    texts, split = target_texts(pool["films"], 4)
    assert split == "validation" and len(texts) == 4 and all(t.startswith("validation ") for t in texts)
    texts, split = target_texts(pool["kits"], 50)
    assert split == "train" and len(texts) == 16 and all(t.startswith("train ") for t in texts)


class Recorder:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.texts += texts
        return fake_encode(texts)


def test_sweep_records_the_selection_and_reports_it(pool: dict[str, Path], tmp_path: Path) -> None:
    from adaptermix.sweep.runner import run_sweep, soup_cache_path
    from tiny import tiny_encoder

    spec = validate(SweepSpec, {"pool": {n: str(p) for n, p in pool.items()}, "max_eval_examples": 4,
                                "subsets": {"generator": ["all", "greedy", *SOUP],
                                            "adaptersoup": {"n_docs": 5, "min_share": 0.2}},
                                "rules": [{"name": "average"}, {"name": "ties", "params": {"density": 0.5}}]})
    enc = tiny_encoder("bert")
    rec = Recorder()
    store = tmp_path / "r.sqlite"
    run_sweep(spec, store, encoder=enc, progress=False, sentence_encode=rec)
    assert rec.texts and not any(t.startswith("test ") for t in rec.texts), "the test split is never embedded"
    assert any(t.startswith("validation movie film plot") for t in rec.texts) and soup_cache_path(store).is_file()
    with ResultsStore(store, readonly=True) as s:
        chosen = s.selections()
        rows = s.rows()
    assert set(chosen) == {(g, t) for g in SOUP for t in TOPICS}
    films = chosen[("adaptersoup_similarity", "films")]
    assert films["adapters"][:2] == ["films", "flicks"] and films["target_texts"] == "validation"
    assert films["score"] == "cosine" and films["params"]["threshold"] == 0.15 and films["encoder"] == "custom"
    assert chosen[("adaptersoup_cluster", "kits")]["target_texts"] == "train"
    soup_rows = [r for r in rows if r["tag"] == "adaptersoup_similarity" and r["target"] == "films"]
    assert sorted(r["k"] for r in soup_rows if r["rule"] == "average") == list(range(1, len(films["adapters"]) + 1))
    # a rerun computes the same selection (cached embeddings, deterministic) and runs nothing new
    again = run_sweep(spec, store, encoder=enc, progress=False, sentence_encode=Recorder())
    assert again.ran == 0
    with ResultsStore(store, readonly=True) as s:
        assert s.selections() == chosen

    stats = compute_stats(store)
    tables = stats.tables()
    assert {"selections", "rules", "adaptersoup"} <= set(tables)
    g = {(r.setting, r.target, r.l): r for r in stats.greedy}
    f2 = g[("clean/average/test", "films", 2)]
    assert not math.isnan(f2.soup_similarity) and f2.random_n == 3  # C(3, 1) mixtures of 2 with films
    pop2 = [r["metric"] for r in rows if r["tag"] == "" and r["target"] == "films" and r["k"] == 2
            and r["rule"] == "average"]
    assert f2.random == pytest.approx(np.mean(pop2))
    assert any(r.target == ALL for r in stats.rules) and {r.rule for r in stats.rules} == {"average",
                                                                                           'ties{"density": 0.5}'}
    assert [r.rank for r in stats.adaptersoup if r.generator == SOUP[0] and r.target == "films"][0] == 1
    names = {p.name for p in write_stats_csv(stats, tmp_path / "csv")}
    assert {"selections.csv", "rules.csv", "adaptersoup.csv"} <= names

    # shard stores merge with their selections
    merged = tmp_path / "m.sqlite"
    merge(merged, [store])
    with ResultsStore(merged, readonly=True) as s:
        assert s.selections() == chosen

    # the report: a study folder with this store shows Fig. 7 with AdapterSoup, the wins and "which rule?"
    from adaptermix.report import build_report

    study = tmp_path / "study"
    (study / "pfeiffer").mkdir(parents=True)
    (study / "pfeiffer" / "results.sqlite").write_bytes(store.read_bytes())
    html = build_report(study, formats=("png",)).read_text(encoding="utf-8")
    for text in ("AdapterSoup similarity", "random selection", "Which selection wins at equal l",
                 "AdapterSoup&#x27;s selections", "Which rule? The all-domain mixture per merge rule",
                 "rules_drop_pfeiffer.png", "validation (5 texts)"):
        assert text in html, text


def test_rule_comparison_normalises_by_the_single_adapter() -> None:
    def row(target: str, k: int, rule: str, metric: float, params: str = "{}") -> dict:
        return {"target": target, "k": k, "rule": rule, "rule_params_json": params, "metric": metric, "tag": "",
                "evaluation": "clean", "eval_params_json": "{}", "split": "test", "max_eval_examples": None,
                "seed": 0, "max_length": None, "subset_json": "[]"}

    rows = [row("A", 3, "average", 0.6), row("A", 3, "emr", 0.85), row("B", 3, "average", 0.4),
            row("B", 3, "emr", 0.5), row("A", 2, "emr", 0.1), row("A", 3, "sparse_fsd", 0.9, '{"s":0.9}')]
    singles = [row("A", 1, "average", 0.9), row("B", 1, "average", 0.5)]
    out = rule_comparison(rows, singles)
    assert [(r.rule, r.target) for r in out] == [("emr", "*"), ("emr", "A"), ("emr", "B"), ("average", "*"),
                                                 ("average", "A"), ("average", "B")]
    emr = out[0]
    assert emr.drop_pts == pytest.approx((5.0 + 0.0) / 2) and emr.pct_of_single == pytest.approx((85 / 0.9 + 100) / 2)
    assert emr.storage_bits_per_param == 1.0 and out[3].storage_bits_per_param == 0.0 and emr.n == 2
    assert out[4].drop_pts == pytest.approx(30.0) and out[4].k == 3
    assert rule_comparison(rows) == [], "no single adapters, nothing to normalise by"
    from adaptermix.masked import MASKED_RULES
    from adaptermix.sweep.stats import MASKED_STORAGE

    assert set(MASKED_STORAGE) == set(MASKED_RULES)
