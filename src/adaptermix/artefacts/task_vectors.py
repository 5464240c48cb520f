"""The task-vector space of a pool: each adapter minus the shared initialisation it was trained from.

Merging papers (task arithmetic, TIES, EMR, TALL masks, ...) define their rules on task vectors
tau_t = theta_t - theta_0. For full fine-tuning theta_0 is the pre-trained model; an adapter has no
pre-trained value, but adaptermix trains every adapter of a pool from one seeded initialisation
(``method.init`` + ``init_seed``, shared across domains by default), which can be rebuilt exactly. That
init is the base here: ``tau = weights - init`` and a merge in this space returns ``base + rule(tau)``.

The paper this package reproduces (Nguyen & Le 2024, Eq. 1) averages raw parameters, so ``raw`` stays the
default everywhere; for plain averaging the two spaces agree (mean(w - b) + b = mean(w)) when the init is
shared. Imported adapters (peft, AdapterHub) record no init seed: their rebuilt init is not the one they
were trained from, and task vectors of them mean little.
"""

from __future__ import annotations

import json

import torch
from torch import Tensor

from adaptermix.artefacts.pool import AdapterPool, initial_delta
from adaptermix.core.errors import IncompatibleAdaptersError
from adaptermix.deltas import StackedDeltas

SPACES = ("raw", "tv")


def _describe_init(pool: AdapterPool, i: int) -> str:
    cfg = pool.adapters[i].meta.method_config
    return f"init {cfg.init} seed {cfg.init_seed}"


def shared_init(pool: AdapterPool) -> Tensor:
    """The one initial body [P] (float32) every adapter of ``pool`` started from, rebuilt from its method
    config; IncompatibleAdaptersError (one line) when two adapters started from different inits."""
    rebuilt: dict[str, Tensor] = {}
    first: Tensor | None = None
    for i, adapter in enumerate(pool.adapters):
        base = adapter.meta.base_model
        key = json.dumps([adapter.meta.method, base.get("hidden_size"), base.get("num_layers")], sort_keys=True)
        if key not in rebuilt:
            delta = initial_delta(adapter)
            if delta.layout != pool.stacked.layout:
                raise IncompatibleAdaptersError(
                    f"the rebuilt initial adapter of {pool.names[i]!r} does not match the pool's tensors")
            rebuilt[key] = delta.flatten()
        vec = rebuilt[key]
        if first is None:
            first = vec
        elif not torch.equal(vec, first):
            raise IncompatibleAdaptersError(
                f"adapters {pool.names[0]!r} and {pool.names[i]!r} start from different initialisations "
                f"({_describe_init(pool, 0)} vs {_describe_init(pool, i)}): task vectors need one shared init; "
                "use the raw space")
    assert first is not None  # a pool is never empty
    return first


def task_vectors(pool: AdapterPool) -> tuple[Tensor, Tensor]:
    """(tau [N, P], base [P]): the pool's weights minus their shared initialisation, and that init."""
    base = shared_init(pool)
    return pool.flat - base, base


def tv_stack(pool: AdapterPool) -> tuple[StackedDeltas, Tensor]:
    """The task vectors as a :class:`StackedDeltas` (the pool's layout and names) and the base [P]."""
    tau, base = task_vectors(pool)
    return StackedDeltas(tau, pool.stacked.layout, pool.stacked.names, pool.stacked.space), base
