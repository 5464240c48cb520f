"""adaptermix: research toolkit for mixtures of domain-specific adapters.

Implements Nguyen & Le (2024), "Generalizability of Mixture of Domain-Specific Adapters from the Lens of
Signed Weight Directions" (adapter mixing, FSD, greedy mixing, pruning, in-domain sweeps under attack)
and Wang et al. (2022), "AdaMix" (mixture-of-adapters training and merging).
"""

__version__ = "0.1.0"
