"""``adaptermix list [WHAT]``: registered methods, presets, datasets, models, architectures, metrics, rules,
evaluation kinds (with their parameters and defaults)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from adaptermix.cli.base import Command, register_command


def _methods() -> list[str]:
    from adaptermix.methods import METHODS

    return [f"{n:10s} {m.description}" for n, m in METHODS.items()]


def _presets() -> list[str]:
    from adaptermix.methods import METHOD_PRESETS

    return [f"{n:14s} {v}" for n, v in sorted(METHOD_PRESETS.items())]


def _datasets() -> list[str]:
    """The data pack's datasets; the last column says where each comes from: the configured pack's
    folder ($ADAPTERMIX_DATA) or "embedded" (the small copy shipped in the package)."""
    from adaptermix.data.config import resolve_data_root
    from adaptermix.data.datapack import list_datapack

    root, origin = resolve_data_root(None)
    rows = []
    for t in list_datapack(root):
        where = "embedded" if origin == "embedded" else str(root / t.name)
        rows.append(f"{t.name:20s} {t.task:6s} {t.problem:14s} {t.metric:22s} {t.domain:64s} {where}")
    return rows


def _models() -> list[str]:
    from adaptermix.backbone.loading import PACKAGED_MODELS

    out = []
    for name, finder in PACKAGED_MODELS.items():
        local = finder()
        out.append(f"{name:42s} {'packaged: ' + str(local) if local else 'hub only (not installed offline)'}")
    out.append("(any Hugging Face BERT / RoBERTa / DistilBERT / ELECTRA / XLM-R id or local path also works)")
    return out


def _architectures() -> list[str]:
    from adaptermix.backbone.specs import ENCODER_SPECS

    return ENCODER_SPECS.names()


def _metrics() -> list[str]:
    from adaptermix.training.metrics import METRICS

    return METRICS.names()


def _rules() -> list[str]:
    from adaptermix.merging import MERGE_RULES

    return [f"{n:16s} [{r.space}] {r.reference}" for n, r in MERGE_RULES.items()]


def _evaluations() -> list[str]:
    """Each evaluation kind (attacks marked), its description, then one line per parameter with its default."""
    from adaptermix.evaluations.registry import EVALUATION_KINDS, report_order

    out = []
    for name in report_order(EVALUATION_KINDS.names()):
        kind = EVALUATION_KINDS.get(name)
        out.append(f"{name:12s} [{'attack' if kind.adversarial else 'no attack'}] {kind.description}")
        params = kind.parameters()
        out += [f"    {p:22s} {t:24s} default {_default(d)}" for p, t, d in params] or ["    (no parameters)"]
    return out


def _default(value: object) -> str:
    """A default as JSON; a nested group of parameters by its keys (its own defaults are in the docs)."""
    if isinstance(value, dict):
        return "{" + ", ".join(value) + "} (nested)"
    return json.dumps(value)


LISTINGS: dict[str, Callable[[], list[str]]] = {
    "methods": _methods,
    "presets": _presets,
    "datasets": _datasets,
    "models": _models,
    "architectures": _architectures,
    "metrics": _metrics,
    "rules": _rules,
    "evaluations": _evaluations,
}


OWN_DATA = "(your own CSV / TSV / JSONL files: data.source=files; see docs/own-data.md, configs/own-data.yaml)"


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", nargs="?", choices=sorted(LISTINGS), help="what to list (default: all)")


def _run(args: argparse.Namespace) -> int:
    from adaptermix.core.errors import AdapterMixError

    for what in [args.what] if args.what else sorted(LISTINGS):
        print(f"{what}:")
        try:
            lines = LISTINGS[what]()
        except (AdapterMixError, ImportError) as exc:
            if args.what:
                if what == "datasets":  # no data pack: say how to train on one's own files anyway
                    print(f"  {OWN_DATA}", flush=True)
                raise
            lines = [f"(unavailable: {exc})"]
        if what == "datasets":
            lines = [*lines, OWN_DATA]
        for line in lines:
            print(f"  {line}")
    sys.stdout.flush()
    return 0


register_command(Command("list", "list registered methods, presets, datasets, models, metrics, rules, evaluations",
                         _args, _run))
