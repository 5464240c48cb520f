"""Toy data and seeded random adapters: a small trained-looking adapter artefact on a tiny encoder.

The toy data pack lives in the source checkout (``tests/data/pack``: a few CSV datasets, 80 kB), not in
the installed package; :data:`TOY_PACK` points there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from adaptermix.artefacts.artefact import AdapterMeta, new_model, save_adapter, task_to_dict
from adaptermix.backbone.loading import Encoder
from adaptermix.data.schema import TaskInfo
from adaptermix.methods import MethodConfig
from adaptermix.model import HeadConfig

#: The tiny test data pack of the source checkout (``tests/data/pack``).
TOY_PACK = Path(__file__).parents[3] / "tests" / "data" / "pack"
TOY_SENTIMENT = TaskInfo("toy_sentiment", "single", "classification", ("negative", "positive"))


def toy_data(name: str = "toy_sentiment") -> dict[str, Any]:
    """The data config of a dataset of the tiny test data pack."""
    return {"name": name, "data_dir": str(TOY_PACK)}


def make_adapter(
    path: Path,
    encoder: Encoder,
    method: str = "pfeiffer",
    seed: int = 0,
    info: TaskInfo | None = None,
    scale: float = 0.1,
    data: dict[str, Any] | None = None,
    **method_kw: Any,
) -> Path:
    """A random (seeded) adapter artefact; ``info`` defaults to a binary task named after the folder.

    ``data`` (a DataConfig mapping) is recorded as the adapter's training data, which is what sweeps
    evaluate a target on.
    """
    info = info or TaskInfo(path.name, "single", "classification", ("neg", "pos"))
    # the base class validates into the config registered for ``name`` (fields it does not use are inert)
    mcfg: MethodConfig = MethodConfig.model_validate({"name": method, "bottleneck_size": 8, "rank": 2, **method_kw})
    model = new_model(encoder, mcfg, HeadConfig(), info)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in list(model.body.parameters()) + list(model.head.parameters()):
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    meta = AdapterMeta(method=mcfg.model_dump(mode="json"), head=HeadConfig().model_dump(),
                       base_model=AdapterMeta.describe_base(encoder), task=task_to_dict(info),
                       training={"data": data, "max_length": 32} if data is not None else None)
    state = model.trainable_state()
    model.detach_body()
    return save_adapter(path, state, meta)
