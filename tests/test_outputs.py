"""Outputs never silently replace work: refusal, ``--overwrite``, idempotent re-runs, symlinked outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from adaptermix.artefact import META, load_adapter
from adaptermix.cli.main import main
from adaptermix.io import (
    OUTPUT_STAMP,
    OutputError,
    OutputExistsError,
    atomic_dir,
    atomic_write_text,
    check_output,
    mark_output,
    output_stamp,
)
from helpers import make_adapter
from tiny import tiny_encoder

MIX = output_stamp("mix", {"rule": "average"})


@pytest.fixture
def pool(tmp_path):
    enc = tiny_encoder("bert")
    return [make_adapter(tmp_path / "pool" / n, enc, seed=i) for i, n in enumerate(["alpha", "beta"])]


def _err(capsys, argv: list[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err.strip()


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------------------------ check_output


def test_check_output_allows_nothing_an_empty_folder_and_its_own_work(tmp_path):
    check_output(tmp_path / "new", stamp=MIX, overwrite=False)
    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty", stamp=MIX, overwrite=False)
    out = tmp_path / "mine"
    atomic_write_text(out / "x.txt", "x")
    mark_output(out, MIX)
    check_output(out, stamp=MIX, overwrite=False)  # the same command, the same inputs: a re-run


def test_check_output_refuses_foreign_or_other_inputs_unless_overwrite(tmp_path):
    out = tmp_path / "work"
    atomic_write_text(out / "x.txt", "precious")
    with pytest.raises(OutputExistsError) as info:
        check_output(out, stamp=MIX, overwrite=False)
    assert str(info.value) == (
        f"{out} already exists (not written by adaptermix); pass --overwrite to replace it, or choose another output"
    )
    check_output(out, stamp=MIX, overwrite=True)
    mark_output(out, output_stamp("prune", {"sparsity": 0.5}))
    with pytest.raises(OutputExistsError, match=r"written by `adaptermix prune`\); pass --overwrite"):
        check_output(out, stamp=MIX, overwrite=False)
    mark_output(out, output_stamp("mix", {"rule": "ties"}))
    with pytest.raises(OutputExistsError, match=r"written by `adaptermix mix` with other inputs\)"):
        check_output(out, stamp=MIX, overwrite=False)


def test_check_output_files_are_stamped_in_their_folder(tmp_path):
    out = tmp_path / "t.csv"
    out.write_text("mine\n")
    with pytest.raises(OutputExistsError, match=r"t\.csv already exists \(not written by adaptermix\)"):
        check_output(out, stamp=MIX, overwrite=False, kind="file")
    mark_output(out, MIX, kind="file")
    check_output(out, stamp=MIX, overwrite=False, kind="file")
    other = tmp_path / "u.csv"
    other.write_text("theirs\n")
    with pytest.raises(OutputExistsError):  # the folder's stamp names files one by one
        check_output(other, stamp=MIX, overwrite=False, kind="file")


def test_check_output_wrong_kind_is_refused_even_with_overwrite(tmp_path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputError, match=r"f: it is a file, not a folder$"):
        check_output(tmp_path / "f", stamp=MIX, overwrite=True)
    with pytest.raises(OutputError, match=r"d: it is a folder, not a file$"):
        check_output(tmp_path / "d", stamp=MIX, overwrite=True, kind="file")


# ------------------------------------------------------------------------------------------ symlinks


def test_atomic_dir_through_a_link_to_a_folder_keeps_the_link_and_leaves_nothing(tmp_path):
    real = tmp_path / "store" / "real"
    atomic_write_text(real / "old.txt", "old")
    (tmp_path / "links").mkdir()
    link = tmp_path / "links" / "out"
    link.symlink_to(real)
    with atomic_dir(link) as tmp:
        (tmp / "new.txt").write_text("new")
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert _listing(real) == ["new.txt"]
    assert _listing(tmp_path / "links") == ["out"] and _listing(tmp_path / "store") == ["real"]


def test_atomic_dir_through_a_dangling_link_creates_its_target(tmp_path):
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "target")
    with atomic_dir(link) as tmp:
        (tmp / "new.txt").write_text("new")
    assert link.is_symlink() and (tmp_path / "target" / "new.txt").read_text() == "new"
    assert _listing(tmp_path) == ["out", "target"]


def test_atomic_dir_onto_a_file_fails_and_leaves_nothing(tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(OutputError, match="exists and is not a directory"):
        with atomic_dir(tmp_path / "out"):
            pass
    assert _listing(tmp_path) == ["out"] and (tmp_path / "out").read_text() == "a file"


# ------------------------------------------------------------------------------------------ commands


def test_mix_refuses_to_replace_a_trained_adapter(pool, tmp_path, capsys):
    trained = make_adapter(tmp_path / "trained", tiny_encoder("bert"), seed=9)
    before = (trained / META).read_text()
    code, err = _err(capsys, ["mix", *map(str, pool), "-o", str(trained)])
    assert code == 2 and "\n" not in err
    assert err == (
        f"adaptermix: error: {trained} already exists (not written by adaptermix); "
        "pass --overwrite to replace it, or choose another output"
    )
    assert (trained / META).read_text() == before
    assert main(["mix", *map(str, pool), "-o", str(trained), "--overwrite"]) == 0
    assert load_adapter(trained).meta.provenance["kind"] == "mixed"


def test_mix_rerun_is_allowed_other_inputs_are_not(pool, tmp_path, capsys):
    out = tmp_path / "mixed"
    assert main(["mix", *map(str, pool), "-o", str(out)]) == 0
    assert main(["mix", *map(str, pool), "-o", str(out)]) == 0  # identical command: idempotent
    code, err = _err(capsys, ["mix", "--rule", "ties", *map(str, pool), "-o", str(out)])
    assert code == 2 and "written by `adaptermix mix` with other inputs" in err and "--overwrite" in err
    code, err = _err(capsys, ["prune", str(pool[0]), "--sparsity", "0.5", "-o", str(out)])
    assert code == 2 and "written by `adaptermix mix`" in err
    assert load_adapter(out).meta.provenance["rule"] == "average"


def test_fsd_and_export_refuse_foreign_outputs(pool, tmp_path, capsys):
    out = tmp_path / "notes"
    atomic_write_text(out / "paper.tex", "work")
    code, err = _err(capsys, ["fsd", *map(str, pool), "-o", str(out)])
    assert code == 2 and f"{out} already exists" in err
    assert _listing(out) == ["paper.tex"]
    assert main(["fsd", *map(str, pool), "-o", str(tmp_path / "fsd")]) == 0
    assert main(["fsd", *map(str, pool), "-o", str(tmp_path / "fsd")]) == 0
    assert (tmp_path / "fsd" / OUTPUT_STAMP).is_file()
    code, err = _err(capsys, ["fsd", "--by", "site", *map(str, pool), "-o", str(tmp_path / "fsd")])
    assert code == 2 and "with other inputs" in err


def test_mix_into_a_symlink_writes_the_target_and_leaves_nothing_behind(pool, tmp_path):
    real = tmp_path / "real"
    assert main(["mix", *map(str, pool), "-o", str(real)]) == 0
    link = tmp_path / "latest"
    link.symlink_to(real)
    assert main(["mix", *map(str, pool), "-o", str(link)]) == 0  # same command, through the link
    assert main(["mix", "--rule", "ties", *map(str, pool), "-o", str(link), "--overwrite"]) == 0
    assert link.is_symlink() and load_adapter(real).meta.provenance["rule"] == "ties"
    assert _listing(tmp_path) == ["latest", "pool", "real"]
    assert not [p for p in tmp_path.rglob(".*") if p.name != OUTPUT_STAMP]


def test_output_that_is_a_file_or_a_dangling_link(pool, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, err = _err(capsys, ["mix", *map(str, pool), "-o", str(tmp_path / "file")])
    assert (code, err) == (2, f"adaptermix: error: cannot write {tmp_path / 'file'}: it is a file, not a folder")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "made")
    assert main(["mix", *map(str, pool), "-o", str(dangling)]) == 0
    assert load_adapter(tmp_path / "made").meta.provenance["kind"] == "mixed" and dangling.is_symlink()
    assert _listing(tmp_path) == ["dangling", "file", "made", "pool"]


def test_stamp_is_json_naming_the_command(pool, tmp_path):
    out = tmp_path / "p"
    assert main(["prune", str(pool[0]), "--sparsity", "0.5", "-o", str(out)]) == 0
    stamp = json.loads((out / OUTPUT_STAMP).read_text())["outputs"]["."]
    assert stamp["command"] == "prune" and len(stamp["inputs"]) == 16
    cwd = os.getcwd()
    try:  # a relative path to the same input is the same input
        os.chdir(pool[0].parent)
        assert main(["prune", pool[0].name, "--sparsity", "0.5", "-o", str(out)]) == 0
    finally:
        os.chdir(cwd)


def test_train_reruns_refuses_other_configs_and_overwrites(tmp_path, capsys):
    from helpers import TOY_PACK, save_tiny_model

    model = save_tiny_model(tmp_path / "tiny")
    out = tmp_path / "adapter"
    argv = ["train", "--set", "data.name=toy_sentiment", "--set", f"data.data_dir={TOY_PACK}",
            "--set", f"model.name={model}", "--set", "train.epochs=1", "--set", "train.progress=false",
            "-o", str(out)]
    assert main(argv) == 0
    assert json.loads((out / OUTPUT_STAMP).read_text())["outputs"]["."]["command"] == "train"
    assert main(argv) == 0  # the same config: a re-run
    mtime = (out / "adapter.safetensors").stat().st_mtime_ns
    code, err = _err(capsys, [*argv, "--set", "train.learning_rate=0.01"])
    assert code == 2 and err.endswith("(written by `adaptermix train` with other inputs); pass --overwrite "
                                      "to replace it, or choose another output")
    assert (out / "adapter.safetensors").stat().st_mtime_ns == mtime  # refused before training
    assert main([*argv, "--set", "train.learning_rate=0.01", "--overwrite"]) == 0
    assert load_adapter(out).meta.training["learning_rate"] == 0.01


def test_reproduce_and_report_refuse_foreign_folders(tmp_path, capsys):
    from helpers import TOY_PACK

    study = tmp_path / "study"
    atomic_write_text(study / "thesis.md", "mine")
    cfg = tmp_path / "s.yaml"
    cfg.write_text(f"output_dir: {study}\ndomains: [toy_sentiment]\ndata: {{data_dir: {TOY_PACK}}}\n")
    code, err = _err(capsys, ["reproduce", str(cfg)])
    assert (code, err) == (2, f"adaptermix: error: {study} already exists (not written by adaptermix); "
                              "pass --overwrite to replace it, or choose another output")
    assert _listing(study) == ["thesis.md"]
    (study / "config.yaml").write_text("name: study\n")
    atomic_write_text(study / "report" / "index.html", "my own page")
    code, err = _err(capsys, ["report", str(study)])
    assert code == 2 and f"{study / 'report'} already exists" in err
    assert (study / "report" / "index.html").read_text() == "my own page"
