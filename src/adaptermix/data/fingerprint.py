"""The identity of a task's data: what a trained adapter's reuse key must name besides its config.

A study reuses a finished adapter when its config hash matches, but the config names a dataset, not its
contents: ``data_dir`` unset means ``$ADAPTERMIX_DATA`` on one machine and the embedded pack on another,
and a user's CSV may be edited in place. The fingerprint hashes the contents (for the data pack, the
per-file SHA-256 sums its ``dataset.json`` records; for files, their bytes), so an adapter trained on
other data is retrained, not silently reused.
"""

from __future__ import annotations

import json
from pathlib import Path

from adaptermix.core.hashing import file_sha256, short_hash
from adaptermix.data.config import DataConfig, resolve_data_dir


def _datapack_files(cfg: DataConfig) -> dict[str, str]:
    folder = resolve_data_dir(cfg.data_dir) / cfg.name
    try:
        manifest = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
        recorded = manifest.get("sha256")
    except (OSError, ValueError):
        recorded = None
    if isinstance(recorded, dict) and recorded:
        return {str(k): str(v) for k, v in recorded.items()}
    return {p.name: file_sha256(p) for p in sorted(folder.glob("*.jsonl"))}


def data_fingerprint(cfg: DataConfig) -> str:
    """16 hex digits naming the contents of ``cfg``'s dataset (not its caps or seeds: the config has those).

    Data pack: the SHA-256 sums of its files as recorded in ``dataset.json`` (checked by ``adaptermix
    doctor``), else hashed; user files: their bytes; Hugging Face datasets: the id and config (their
    contents are versioned by the Hub, not by us).
    """
    if cfg.source == "datapack":
        parts: dict[str, str] = _datapack_files(cfg)
    elif cfg.source == "files":
        parts = {split: file_sha256(Path(path).expanduser()) for split, path in sorted((cfg.files or {}).items())
                 if Path(path).expanduser().is_file()}
    else:
        parts = {"hf_name": cfg.hf_name or cfg.name, "hf_config": cfg.hf_config or ""}
    payload = json.dumps({"source": cfg.source, "parts": parts}, sort_keys=True)
    return short_hash(payload)
