"""The evaluations a sweep runs, under their old names (kept so existing imports keep working).

Evaluation kinds now live in :mod:`adaptermix.evaluations` (see :mod:`adaptermix.evaluations.registry`):
each is an :class:`~adaptermix.evaluations.base.EvaluationKind` defined beside its attack. ``EVALUATIONS``
here is a read-only view of that registry as the name -> run function mapping it used to be.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from adaptermix.attacks.fgsm import run_fgsm as _fgsm
from adaptermix.attacks.textfooler_eval import _ATTACKS, _textfooler_attack
from adaptermix.attacks.textfooler_eval import run_textfooler as _textfooler
from adaptermix.evaluations.base import EvalOutcome, EvalSet
from adaptermix.evaluations.clean import run_clean as _clean
from adaptermix.evaluations.registry import EVALUATION_KINDS

#: An evaluation kind's run function (``EvaluationKind.run``). ``Evaluation`` is its deprecated name: the
#: concept "evaluation" is the registered kind (:class:`adaptermix.evaluations.base.EvaluationKind`).
EvaluationRun = Callable[..., EvalOutcome]
Evaluation = EvaluationRun


class _RunFunctions:
    """The registered kinds' run functions by name (``EVALUATIONS.get("fgsm")(model, es, params, id, bs)``)."""

    def get(self, name: str) -> EvaluationRun:
        return EVALUATION_KINDS.get(name).run

    def names(self) -> list[str]:
        return EVALUATION_KINDS.names()

    def items(self) -> Iterator[tuple[str, EvaluationRun]]:
        return iter([(name, kind.run) for name, kind in EVALUATION_KINDS.items()])

    def __contains__(self, name: object) -> bool:
        return name in EVALUATION_KINDS

    def __len__(self) -> int:
        return len(EVALUATION_KINDS)


EVALUATIONS = _RunFunctions()

__all__ = ["EVALUATIONS", "EvalOutcome", "EvalSet", "Evaluation", "EvaluationRun", "_ATTACKS", "_clean", "_fgsm", "_textfooler",
           "_textfooler_attack"]
