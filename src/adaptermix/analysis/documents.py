"""The documents of each study domain that the dataset analyses (Fig. 2a / 2b) read.

A document is one example's text; for sentence-pair tasks the two texts are joined with a space, since
both halves are what the domain's adapter reads. Each analysis draws a seeded sample so that reruns give
the same figures.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from adaptermix.core.hashing import short_hash
from adaptermix.data.schema import Example

#: Seed of the document samples (fixed, so a rerun draws the same documents).
SAMPLE_SEED = 0


def document_text(example: Example) -> str:
    """The text of one example; a pair task's two texts joined with a space."""
    return example.text if example.text_pair is None else f"{example.text} {example.text_pair}"


def sample_documents(docs: Sequence[str], n: int, seed: int = SAMPLE_SEED) -> list[str]:
    """At most ``n`` non-empty documents drawn without replacement by a seeded RNG (order kept)."""
    kept = [d for d in docs if d.strip()]
    if len(kept) <= n:
        return kept
    picked = sorted(random.Random(seed).sample(range(len(kept)), n))
    return [kept[i] for i in picked]


def load_study_documents(cfg: Any, n_docs: int) -> dict[str, list[str]]:
    """Domain name -> up to ``n_docs`` train documents of each domain of a :class:`StudyConfig`.

    The train split is loaded through :func:`adaptermix.data.load_task` with the study's data config,
    whose ``max_train`` is replaced by ``n_docs``: the loader's seeded, label-stratified cap then draws
    the sample from the whole train split (not just from the study's smaller training subset).
    """
    from adaptermix.data import load_task

    out = {}
    for domain in cfg.domains:
        data_cfg = cfg.data_config(domain).model_copy(update={"max_train": n_docs})
        task = load_task(data_cfg, splits=("train",))
        docs = [document_text(ex) for ex in task.split("train")]
        out[data_cfg.name] = sample_documents(docs, n_docs)
    return out


def inputs_digest(cfg: Any, extra: Mapping[str, Any]) -> str:
    """A hash of what an analysis reads (every domain's data config) and its parameters.

    Stored in the output JSON, so a rerun of the pipeline with unchanged inputs skips the analysis.
    """
    data = {
        "data": [cfg.data_config(d).model_dump(mode="json") for d in cfg.domains],
        "params": dict(extra),
    }
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return short_hash(text)


def up_to_date(path: Path, digest: str) -> bool:
    """Whether ``path`` is an analysis output written from inputs with this digest."""
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("inputs_digest") == digest
    except (OSError, ValueError, AttributeError):
        return False
