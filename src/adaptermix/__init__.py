"""adaptermix: research toolkit for mixtures of domain-specific adapters.

Implements Nguyen & Le (2024), "Generalizability of Mixture of Domain-Specific Adapters from the Lens of
Signed Weight Directions" (adapter mixing, FSD, greedy mixing, pruning, in-domain sweeps under attack)
and Wang et al. (2022), "AdaMix" (mixture-of-adapters training and merging).
"""

from __future__ import annotations

from typing import Any

from adaptermix._version import __version__

#: The library's verbs (``am.load_pool``, ``am.fsd``, ``am.mix``, ...), defined in :mod:`adaptermix.api` and
#: imported on first use, so that ``import adaptermix`` (and the CLI's start-up) does not load torch. No verb
#: may share a subpackage's name (``adaptermix.sweep``, ``adaptermix.recommend``): importing the subpackage
#: would replace it, hence ``run_sweep`` and ``recommend_mixture``.
_API = ("load_adapter", "load_pool", "save", "fsd", "fsd_by_kind", "fsd_summary", "fsd_grouped", "mix",
        "mix_masked", "prune", "evaluate", "eval_data", "run_sweep", "results", "stats", "sweep_stats",
        "predictor_data", "predict", "recommend_mixture")
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from adaptermix import api

        return getattr(api, name)
    raise AttributeError(f"module 'adaptermix' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
