"""The study report: the paper's figures and tables, auto-generated statements, and an HTML page.

Everything here reads only from results stores and study artefacts (plotting never triggers compute):
``build_report(study_dir)`` writes ``{study}/report/index.html`` with its figures and tables.
``build_report`` is imported lazily so that ``adaptermix.report.plots`` stays a light import.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_report"]


def __getattr__(name: str) -> Any:
    if name == "build_report":
        from adaptermix.report.build import build_report

        return build_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
