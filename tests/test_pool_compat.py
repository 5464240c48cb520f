"""Pool compatibility across artefact versions: a method field added later (with a default) must not make
older artefacts unmixable with newer ones."""

from __future__ import annotations

import json

import pytest

from adaptermix.errors import IncompatibleAdaptersError
from adaptermix.pool import load_pool
from helpers import TOY_SENTIMENT, make_adapter, toy_data
from tiny import tiny_encoder


def _drop_field(path, field):
    meta_path = path / "adapter.json"
    meta = json.loads(meta_path.read_text())
    meta["method"].pop(field)
    meta_path.write_text(json.dumps(meta))


def test_artefact_without_a_defaulted_field_mixes_with_newer_ones(tmp_path):
    enc = tiny_encoder("bert")
    for i, name in enumerate(("old", "new")):
        make_adapter(tmp_path / name, enc, method="houlsby", seed=i, info=TOY_SENTIMENT, data=toy_data())
    _drop_field(tmp_path / "old", "original_ln_before")  # written before the field existed
    pool = load_pool([tmp_path / "old", tmp_path / "new"])
    assert pool.names == ["old", "new"]


def test_a_real_method_difference_is_still_refused(tmp_path):
    enc = tiny_encoder("bert")
    make_adapter(tmp_path / "a", enc, method="houlsby", seed=0, info=TOY_SENTIMENT, data=toy_data())
    make_adapter(tmp_path / "b", enc, method="pfeiffer", seed=1, info=TOY_SENTIMENT, data=toy_data())
    with pytest.raises(IncompatibleAdaptersError, match="have different method"):
        load_pool([tmp_path / "a", tmp_path / "b"])
