"""Adversarial attacks on adapters and mixtures: FGSM (white-box) and TextFooler (black-box).

Attacks see a model only through a victim: :class:`~adaptermix.attacks.model_victim.ModelVictim` wraps an
adapter model (probabilities for texts, gradients w.r.t. word embeddings). Each attack is also a registered
evaluation kind (``fgsm`` in :mod:`adaptermix.attacks.fgsm`, ``textfooler`` in
:mod:`adaptermix.attacks.textfooler_eval`; the catalogue is :mod:`adaptermix.evaluations.registry`).

Word-level attacks are composed from parts (goal, constraints, transformation, search) into an
:class:`~adaptermix.attacks.attack.Attack`; :func:`~adaptermix.attacks.textfooler.textfooler` is TextFooler's
recipe (docs/attacks.md).

The names below are loaded on first use (PEP 562), so importing a submodule that needs no torch — the
TextFooler recipe's config, the evaluation kinds a sweep spec is checked against — does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Attack": "adaptermix.attacks.attack",
    "CachedVictim": "adaptermix.attacks.victim",
    "FGSMConfig": "adaptermix.attacks.fgsm",
    "ModelVictim": "adaptermix.attacks.model_victim",
    "Victim": "adaptermix.attacks.victim",
    "fgsm_evaluate": "adaptermix.attacks.fgsm",
    "fgsm_outputs": "adaptermix.attacks.fgsm",
    "fgsm_perturb": "adaptermix.attacks.fgsm",
    "textfooler": "adaptermix.attacks.textfooler",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
