"""The CLI is a thin layer over the public API: every command whose verb ``adaptermix.api`` has calls it.

Each case replaces ``am.<verb>`` by a probe that raises; the command must reach the probe (it calls the
verb through ``import adaptermix as am``, not a deeper module), and the probe's exception must leave
``main`` uncaught (it is no ``AdapterMixError``).
"""

from __future__ import annotations

import pytest
import yaml

import adaptermix as am
from adaptermix.cli.main import COMMAND_MODULES, main
from helpers import make_adapter, toy_data
from tiny import tiny_encoder


class Hit(Exception):
    pass


@pytest.fixture
def pool(tmp_path):
    enc = tiny_encoder("bert")
    return [str(make_adapter(tmp_path / "pool" / n, enc, seed=i, data=toy_data()))
            for i, n in enumerate(["alpha", "beta"])]


def _probe(monkeypatch: pytest.MonkeyPatch, verb: str) -> None:
    assert verb in am.__all__ and callable(getattr(am, verb))

    def probe(*args: object, **kwargs: object) -> None:
        raise Hit(verb)

    monkeypatch.setattr(am, verb, probe)


def _argv(name: str, pool: list[str], tmp) -> list[str]:
    out = str(tmp / "out")
    spec = tmp / "spec.yaml"
    spec.write_text(yaml.safe_dump({"pool": pool, "evaluations": ["clean"]}))
    return {
        "fsd": ["fsd", *pool, "-o", out],
        "mix": ["mix", *pool, "-o", out],
        "mix_masked": ["mix", *pool, "--rule", "emr", "-o", out],
        "prune": ["prune", pool[0], "--sparsity", "0.5", "-o", out],
        "evaluate": ["eval", pool[0]],
        "run_sweep": ["sweep", str(spec), "--store", str(tmp / "s.sqlite"), "--no-progress"],
        "sweep_stats": ["stats", str(tmp / "s.sqlite")],
        "predictor_data": ["predict", str(tmp / "s.sqlite")],
        "recommend_mixture": ["recommend", "--pool", *pool, "--store", str(tmp / "s.sqlite"),
                              "--target", "alpha", "--budget", "2"],
    }[name]


#: verb -> the CLI module whose command must call it
CASES = {"fsd_summary": "mixing", "mix": "mixing", "mix_masked": "mixing", "prune": "mixing",
         "evaluate": "evaluate", "run_sweep": "sweep", "sweep_stats": "sweep", "predictor_data": "recommend",
         "recommend_mixture": "recommend"}


@pytest.mark.parametrize("verb", sorted(CASES))
def test_command_calls_the_api_verb(verb, pool, tmp_path, monkeypatch):
    assert CASES[verb] in COMMAND_MODULES
    _probe(monkeypatch, verb)
    with pytest.raises(Hit, match=verb):
        main(_argv("fsd" if verb == "fsd_summary" else verb, pool, tmp_path))


def test_predict_and_prune_call_their_verbs_after_loading(pool, tmp_path, monkeypatch):
    """``prune`` loads through ``am.load_adapter`` and prunes with ``am.prune``; ``predict`` fits with ``am.predict``."""
    _probe(monkeypatch, "load_adapter")
    with pytest.raises(Hit, match="load_adapter"):
        main(["prune", pool[0], "--sparsity", "0.5", "-o", str(tmp_path / "o")])
    monkeypatch.undo()
    monkeypatch.setattr(am, "predictor_data", lambda *a, **k: "data")
    _probe(monkeypatch, "predict")
    with pytest.raises(Hit, match="predict"):
        main(["predict", str(tmp_path / "s.sqlite")])


def test_choices_and_help_read_the_registries(capsys, monkeypatch):
    """A plug-in registered after the parser is built appears in the help and is accepted as a choice."""
    from adaptermix.cli.main import build_parser
    from adaptermix.pruning import SCOPES
    from adaptermix.recommend.search import STRATEGIES

    parser = build_parser()

    def toy(run: object, seed: int, prior: object) -> None:
        return None

    with STRATEGIES.registered("toy_strategy", toy):
        with pytest.raises(SystemExit):
            parser.parse_args(["recommend", "--help"])
        assert "toy_strategy" in capsys.readouterr().out
    monkeypatch.setitem(SCOPES, "per_toy", "tensor")
    args = parser.parse_args(["prune", "a", "--sparsity", "0.5", "--scope", "per_toy", "-o", "b"])
    assert args.scope == "per_toy"
    monkeypatch.undo()
    with pytest.raises(SystemExit):
        parser.parse_args(["prune", "a", "--sparsity", "0.5", "--scope", "per_toy", "-o", "b"])
    assert "invalid choice: 'per_toy'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["mix", "--help"])
    out = capsys.readouterr().out
    assert "ties" in out and "raw, tv, dw" in out


def test_building_the_parser_imports_no_plugin():
    import subprocess
    import sys

    code = ("import sys; from adaptermix.cli.main import build_parser; build_parser(); "
            "assert 'torch' not in sys.modules and 'scipy' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
