"""Every evaluation kind, built-in ones included: the registry spec, runner, pipeline, CLI and report read.

Importing this module imports the built-in kinds (each registers itself where it is defined); a kind of
one's own registers with :func:`~adaptermix.evaluations.base.register_evaluation_kind` in its own module,
which must be imported before a spec naming it is loaded. No torch is imported here.

The report shows kinds in their ``order`` (then by name) with their label and colour; a kind found in a
results store but not registered (a plug-in not imported, a kind since removed) is still shown, after the
registered ones, labelled by its name, in a colour derived from its name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import adaptermix.attacks.fgsm  # noqa: F401  registers "fgsm"
import adaptermix.attacks.textfooler_eval  # noqa: F401  registers "textfooler"
import adaptermix.evaluations.clean  # noqa: F401  registers "clean"
from adaptermix.core.hashing import sha256_hex
from adaptermix.core.registry import Registry
from adaptermix.evaluations.base import _KINDS, EvaluationKind

EVALUATION_KINDS: Registry[EvaluationKind[Any]] = _KINDS

#: Colours of kinds that are not registered (picked by a hash of the name, so they are stable).
_SPARE_COLOURS = ("tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")


def report_order(names: Iterable[str]) -> list[str]:
    """``names`` (repeats dropped) in report order: registered kinds by (order, name), then the others by name."""
    unique = set(names)
    known = sorted((n for n in unique if n in EVALUATION_KINDS), key=lambda n: (EVALUATION_KINDS.get(n).order, n))
    return known + sorted(n for n in unique if n not in EVALUATION_KINDS)


def label_of(name: str) -> str:
    """The report's label of a kind (its name when it is not registered)."""
    return EVALUATION_KINDS.get(name).label if name in EVALUATION_KINDS else name


def colour_of(name: str) -> str:
    """The report's colour of a kind (for a kind that is not registered, one derived from its name)."""
    if name in EVALUATION_KINDS:
        return EVALUATION_KINDS.get(name).colour
    return _SPARE_COLOURS[int(sha256_hex(name), 16) % len(_SPARE_COLOURS)]
