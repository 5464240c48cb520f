"""Old import path of AdaMix's consistency term (Eq. 5), kept for users' code: a thin re-export of
:mod:`adaptermix.methods.adamix.consistency`."""

from adaptermix.methods.adamix.consistency import consistency_loss, symmetric_kl

__all__ = ["consistency_loss", "symmetric_kl"]
