"""The consistency term of AdaMix (Eq. 5); defined with the other training losses in
:mod:`adaptermix.methods.losses` (the method's ``training_loss`` uses it), re-exported here."""

from adaptermix.methods.losses import consistency_loss, symmetric_kl

__all__ = ["consistency_loss", "symmetric_kl"]
