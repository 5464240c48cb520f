"""The CLI: bad input gives one line on stderr and exit 2; the MiniLM end-to-end smoke test."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from adaptermix.cli.main import main
from conftest import REPO


def _err(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    return code, err


def test_unknown_method(capsys, tmp_path, real_data):
    code, err = _err(
        capsys,
        [
            "train",
            "--set",
            "data.name=sst2",
            "--set",
            "method.name=nope",
            "--set",
            f"data.data_dir={real_data}",
            "-o",
            str(tmp_path / "o"),
        ],
    )
    assert code == 2
    assert err.startswith("adaptermix: error: unknown method 'nope'; valid: ") and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_unknown_dataset(capsys, tmp_path, real_data):
    code, err = _err(
        capsys,
        [
            "train",
            "--set",
            "data.name=nope",
            "--set",
            f"data.data_dir={real_data}",
            "-o",
            str(tmp_path / "o"),
        ],
    )
    assert code == 2 and "unknown dataset 'nope'" in err and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_unknown_model(capsys, tmp_path, real_data):
    missing = tmp_path / "no-such-model"
    code, err = _err(
        capsys,
        [
            "train",
            "--set",
            "data.name=sst2",
            "--set",
            f"model.name={missing}/x",
            "--set",
            f"data.data_dir={real_data}",
            "-o",
            str(tmp_path / "o"),
        ],
    )
    assert code == 2 and err.startswith("adaptermix: error: cannot load model") and "\n" not in err


def test_unknown_config_key(capsys, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {name: sst2}\nbogus: 1\n")
    code, err = _err(capsys, ["train", str(cfg)])
    assert code == 2 and err == f"adaptermix: error: {cfg}: unknown key 'bogus'"


def test_eval_missing_adapter(capsys, tmp_path):
    code, err = _err(capsys, ["eval", str(tmp_path / "nope")])
    assert code == 2 and err.startswith("adaptermix: error: adapter not found:")


@pytest.mark.slow
def test_train_and_eval_end_to_end_on_minilm(tmp_path, minilm_ready):
    """The packaged MiniLM, a few dozen real SST-2 examples, through the real console entry point."""
    env = {**os.environ, "ADAPTERMIX_DATA": str(minilm_ready), "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "sst2-lora"
    cmd = [
        sys.executable,
        "-m",
        "adaptermix",
        "train",
        str(REPO / "configs" / "sst2-pfeiffer.yaml"),
        "--set",
        "data.max_train=48",
        "--set",
        "data.max_validation=24",
        "--set",
        "data.max_test=24",
        "--set",
        "method.name=lora",
        "--set",
        "train.epochs=1",
        "--set",
        "train.progress=false",
        "-o",
        str(out),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert set(report["metrics"]) == {"validation", "test"}
    assert 0.0 <= report["metrics"]["test"]["accuracy"] <= 1.0
    for name in ("adapter.safetensors", "adapter.json", "config.yaml"):
        assert (out / name).is_file()
    meta = json.loads((out / "adapter.json").read_text())
    assert meta["method"]["name"] == "lora" and meta["task"]["label_names"] == ["negative", "positive"]
    assert meta["training"]["train_examples"] == 48 and meta["base_model"]["fingerprint"]

    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "adaptermix",
            "eval",
            str(out),
            "--split",
            "test",
            "--max-examples",
            "24",
            "--json",
            str(tmp_path / "m.json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    again = json.loads((tmp_path / "m.json").read_text())["metrics"]
    assert again["accuracy"] == pytest.approx(report["metrics"]["test"]["accuracy"])


def test_closed_pipe_exits_quietly() -> None:
    """``adaptermix list rules | head -0``: no traceback, the shell's SIGPIPE status (141)."""
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the command writes anything
    try:
        res = subprocess.run(
            [sys.executable, "-m", "adaptermix", "list", "rules"], stdout=w, stderr=subprocess.PIPE, timeout=120
        )
    finally:
        os.close(w)
    assert res.returncode == 141
    assert res.stderr == b""
