"""Adversarial attacks on adapters and mixtures: FGSM (white-box) and TextFooler (black-box).

Attacks see a model only through a victim: :class:`~adaptermix.attacks.model_victim.ModelVictim` wraps an
adapter model (probabilities for texts, gradients w.r.t. word embeddings). In sweeps they are the
registered evaluations ``fgsm`` and ``textfooler`` (:mod:`adaptermix.sweep.evaluations`); the heavy
TextFooler resources are imported lazily, so importing this package stays cheap.
"""

from adaptermix.attacks.fgsm import FGSMConfig, fgsm_evaluate, fgsm_outputs, fgsm_perturb
from adaptermix.attacks.model_victim import ModelVictim
from adaptermix.attacks.victim import CachedVictim, Victim

__all__ = ["CachedVictim", "FGSMConfig", "ModelVictim", "Victim", "fgsm_evaluate", "fgsm_outputs", "fgsm_perturb"]
