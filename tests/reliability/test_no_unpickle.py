"""Nothing in the package unpickles a file: safetensors everywhere, ``torch.load`` only with
``weights_only=True``. A static scan of the source (fails if that changes) and a runtime check with the
unpickler disabled."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest
import torch

import adaptermix
from adaptermix.artefact import load_adapter, model_from_adapter
from adaptermix.backbone.loading import load_encoder
from adaptermix.pool import load_pool
from adaptermix.sweep.export import export_store
from adaptermix.sweep.stats import compute_stats
from adaptermix.sweep.store import ResultsStore
from helpers import TOY_SENTIMENT, make_adapter

PACKAGE = Path(adaptermix.__file__).parent
#: Modules whose only purpose is (un)pickling: importing one at all is a finding.
PICKLING_MODULES = {"pickle", "_pickle", "cPickle", "dill", "joblib", "cloudpickle", "shelve", "marshal"}
#: Calls that unpickle whatever their arguments.
UNPICKLING_CALLS = {"pandas.read_pickle", "torch.serialization.load"}


def _qualified(node: ast.expr, aliases: dict[str, str]) -> str | None:
    """``np.load`` -> ``numpy.load`` through the module's imports; None for anything but a dotted name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(aliases.get(node.id, node.id))
    return ".".join(reversed(parts))


def _keyword_is(call: ast.Call, name: str, value: object) -> bool:
    return any(
        k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is value for k in call.keywords
    )


def unpickling_sites(source: str, filename: str = "<src>") -> list[str]:
    """``file:line: what`` for every place ``source`` may unpickle data."""
    tree = ast.parse(source, filename)
    aliases: dict[str, str] = {}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
                if a.name.split(".")[0] in PICKLING_MODULES:
                    found.append(f"{filename}:{node.lineno}: import {a.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            if node.module.split(".")[0] in PICKLING_MODULES:
                found.append(f"{filename}:{node.lineno}: from {node.module} import ...")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _qualified(node.func, aliases)
        if name is None:
            continue
        root = name.split(".")[0]
        if root in PICKLING_MODULES or name in UNPICKLING_CALLS:
            found.append(f"{filename}:{node.lineno}: {name}(...)")
        elif name == "torch.load" and not _keyword_is(node, "weights_only", True):
            found.append(f"{filename}:{node.lineno}: torch.load without weights_only=True")
        elif (
            name == "numpy.load"
            and any(k.arg == "allow_pickle" for k in node.keywords)
            and not _keyword_is(node, "allow_pickle", False)
        ):
            found.append(f"{filename}:{node.lineno}: numpy.load with allow_pickle")
    return found


def test_package_source_never_unpickles():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 50, "the scan must see the whole package"
    found = [site for path in files for site in unpickling_sites(path.read_text(encoding="utf-8"), str(path))]
    assert found == [], "\n".join(found)


@pytest.mark.parametrize(
    ("snippet", "flagged"),
    [
        ("import torch\ntorch.load('x')", True),
        ("import torch\ntorch.load('x', weights_only=False)", True),
        ("import torch\ntorch.load('x', map_location='cpu', weights_only=True)", False),
        ("from torch import load\nload('x')", True),
        ("import torch as T\nT.load('x')", True),
        ("import pickle\npickle.loads(b'')", True),
        ("from pickle import Unpickler\nUnpickler(f).load()", True),
        ("import numpy as np\nnp.load('x', allow_pickle=True)", True),
        ("import numpy as np\nnp.load('x')", False),
        ("import numpy as np\nnp.load('x', allow_pickle=False)", False),
        ("import joblib\njoblib.load('x')", True),
        ("import dill", True),
        ("import pandas as pd\npd.read_pickle('x')", True),
        ("from safetensors.torch import load_file\nload_file('x')", False),
    ],
)
def test_scanner_catches_unpickling(snippet, flagged):
    assert bool(unpickling_sites(snippet)) is flagged


def test_nothing_unpickles_at_run_time(monkeypatch, tiny_model, sweep_case, tmp_path):
    """Save and load adapters, load a pool and an encoder, read a results store: with unpickling disabled."""

    def refuse(*args, **kwargs):
        raise AssertionError("something tried to unpickle")

    torch_load = torch.load

    def guarded_torch_load(*args, **kwargs):
        if kwargs.get("weights_only") is not True:
            refuse()
        return torch_load(*args, **kwargs)

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", guarded_torch_load)

    model_path, encoder = tiny_model
    assert load_encoder(str(model_path)).fingerprint == encoder.fingerprint
    for i, name in enumerate(("x", "y")):
        make_adapter(tmp_path / name, encoder, seed=i, info=TOY_SENTIMENT)
    adapter = load_adapter(tmp_path / "x")
    model_from_adapter(adapter, encoder).detach_body()
    assert load_pool([tmp_path / "x", tmp_path / "y"]).flat.shape[0] == 2
    with ResultsStore(sweep_case.reference, readonly=True) as store:
        assert len(store.rows()) == sweep_case.total
    compute_stats(sweep_case.reference)
    assert export_store(sweep_case.reference, tmp_path / "t.parquet") == sweep_case.total
