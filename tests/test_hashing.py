"""core.hashing is the one content hasher, and moving every key onto it changed no digest.

The values below were computed by the code before core/hashing.py existed (each module hashing with
its own ``hashlib`` call); stored trial keys, config hashes, weights hashes and cache keys stay valid.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from adaptermix.analysis.documents import inputs_digest
from adaptermix.artefact import load_adapter
from adaptermix.attacks.embeddings import WordVectors
from adaptermix.attacks.resources import wordnet_cache_dir, wordnet_key
from adaptermix.config import config_hash
from adaptermix.core.hashing import file_sha256, json_hash, sha256_hex, short_hash, stable_int
from adaptermix.core.timestamps import utc_stamp
from adaptermix.data.config import DataConfig
from adaptermix.data.fingerprint import data_fingerprint
from adaptermix.evaluations.registry import colour_of
from adaptermix.io import output_stamp
from adaptermix.merging.steps import adapter_seed
from adaptermix.recommend.adaptersoup import texts_key
from adaptermix.sweep.spec import Trial
from adaptermix.training.config import TrainRunConfig
from helpers import TOY_PACK, make_adapter
from tiny import tiny_encoder

SRC = Path(__file__).resolve().parents[1] / "src" / "adaptermix"


class _Study:
    domains = ["toy_sentiment"]

    def data_config(self, name: str) -> DataConfig:
        return DataConfig(name=name, data_dir="/x")


def test_keys_are_byte_identical_to_before() -> None:
    assert config_hash(TrainRunConfig(data={"name": "toy_sentiment", "data_dir": "/x/pack"})) == "510ec3b3a18a1a5f"
    assert Trial("a", ("a", "b"), "average", "test", "clean", 0, {"p": 0.5}).key == "33c0b1ef7b56637b"
    assert output_stamp("sweep", {"a": [1, 2], "b": Path("/x")})["inputs"] == "d44ebd5fd229650d"
    assert adapter_seed(7, "alpha") == 2658740896305943878
    assert colour_of("not-a-kind-xyz") == "tab:cyan"
    assert inputs_digest(_Study(), {"k": 3}) == "304883ca5dbe9cb1"
    assert texts_key({"a": ["héllo", "b"]}, "enc") == (
        "80cde8523104fd5f531f84342c8c4ce6a9c5a6c87ef1034bfbd6462c475c350e")
    train = TOY_PACK / "toy_sentiment" / "train.jsonl"
    assert data_fingerprint(DataConfig(name="t", source="files", files={"train": str(train)})) == "fd7d0adecbc5ac5f"
    assert wordnet_key({"words.txt": TOY_PACK / "wordlists" / "words.txt"}) == "4ca7d92620694415"
    assert wordnet_cache_dir("/tmp/wn-src", "/tmp/c").name == "wordnet-748ff167"
    vectors = WordVectors(("a", "bé"), np.arange(6, dtype=np.float32).reshape(2, 3))
    assert vectors.fingerprint() == "c87fb57b46599bd7"


def test_weights_and_encoder_fingerprints_are_unchanged(tmp_path: Path) -> None:
    encoder = tiny_encoder("bert")
    assert encoder.fingerprint == "c8d9c0ebf9b04423"
    adapter = load_adapter(make_adapter(tmp_path / "a", encoder, seed=3))
    assert adapter.weights_sha256() == "03b1aa75383e1c982ca6816f127905c0125a45c2568afe4fe1f260d1a069bb54"


def test_hasher_functions(tmp_path: Path) -> None:
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert sha256_hex(b"") == sha256_hex([]) == sha256_hex("") == empty
    assert sha256_hex(["ab", b"c"]) == sha256_hex("abc") and short_hash("abc") == sha256_hex("abc")[:16]
    assert json_hash({"b": 1, "a": 2}, compact=True) == short_hash('{"a":2,"b":1}')
    assert json_hash({"b": 1, "a": 2}) == short_hash('{"a": 2, "b": 1}')
    (tmp_path / "f").write_bytes(b"abc" * 1_000_000)
    assert file_sha256(tmp_path / "f") == sha256_hex(b"abc" * 1_000_000)
    assert 0 <= stable_int("x") < 2**63


def test_only_core_hashing_imports_hashlib() -> None:
    """One content hasher: no other module of the package calls hashlib itself."""
    users = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if "hashlib" in names:
                users.append(str(path.relative_to(SRC)))
    assert users == ["core/hashing.py"], users


def test_created_at_format_is_the_old_one() -> None:
    """``2025-01-31T12:00:00+00:00``: what artefacts, masked artefacts and stores have always carried."""
    stamp = utc_stamp()
    assert len(stamp) == 25 and stamp[10] == "T" and stamp.endswith("+00:00")
