"""Evaluation kinds as plug-ins: what a sweep measures per mixture (clean metric, FGSM, TextFooler ...).

- :mod:`adaptermix.evaluations.base` — :class:`~adaptermix.evaluations.base.EvaluationKind` (name, typed
  parameters with defaults, run function, report label and colour), the evaluation set and outcome types,
  and ``register_evaluation_kind``; no torch, no kind.
- :mod:`adaptermix.evaluations.registry` — ``EVALUATION_KINDS``, every kind (the built-in ones imported),
  and the report's order, labels and colours; what spec, runner, pipeline, CLI and report read.
- :mod:`adaptermix.evaluations.config` — how configs list kinds (``evaluations: [clean, {name, params}]``,
  old per-kind keys folded in).
- :mod:`adaptermix.evaluations.adapter` — one kind on one adapter (``adaptermix attack``); loads torch.

This package's ``__init__`` imports nothing, so a kind's module may import ``evaluations.base`` while the
registry imports the kind: no import cycle. See docs/evaluations.md for adding a kind.
"""
