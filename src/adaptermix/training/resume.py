"""When a trained adapter can be reused instead of trained again: the config-hash logic of every grid.

A training job records :func:`training_key` of its run config in ``adapter.json``
(``training.config_hash``); an artefact found at the job's folder with the same key is the job's result
(:func:`reusable_metrics`). A study's trainings (:mod:`adaptermix.pipeline.train_stage`) and the AdaMix
experiment's runs (:mod:`adaptermix.adamix.runner`) both decide with these two functions.
"""

from __future__ import annotations

from pathlib import Path

from adaptermix.artefacts.artefact import META, load_adapter
from adaptermix.core.config import config_hash
from adaptermix.core.errors import ArtefactError
from adaptermix.core.hashing import short_hash
from adaptermix.data.fingerprint import data_fingerprint
from adaptermix.training.config import TrainRunConfig


def training_key(run: TrainRunConfig) -> str:
    """What a finished adapter must match to be reused: the config's hash, its data's contents
    (:func:`adaptermix.data.fingerprint.data_fingerprint`) and the resolved encoder precision, so an adapter
    trained on another data pack (e.g. the embedded one vs ``$ADAPTERMIX_DATA``) or in another number
    format (``precision: auto`` differs between machines) is retrained, not silently reused."""
    from adaptermix.core.device import precision_name, resolve_device, resolve_precision

    dtype = resolve_precision(run.model.precision, resolve_device())
    payload = f"{config_hash(run)}:{data_fingerprint(run.data)}:{precision_name(dtype)}"
    return short_hash(payload)


def reusable_metrics(path: str | Path, key: str) -> dict[str, dict[str, float]] | None:
    """The metrics of the artefact at ``path`` when it was trained with ``key``; None when there is no
    readable artefact there or it was trained from another config."""
    path = Path(path)
    if not (path / META).is_file():
        return None
    try:
        adapter = load_adapter(path)
    except ArtefactError:
        return None
    if (adapter.meta.training or {}).get("config_hash") != key:
        return None
    return adapter.meta.metrics
