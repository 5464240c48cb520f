"""Predicted vs measured: the figure a reader checks before trusting the predictor."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adaptermix.recommend.predictor import Dataset, PredictorReport
from adaptermix.report.plots import plt, save_figure


def predicted_vs_measured(data: Dataset, report: PredictorReport, path: str | Path) -> list[Path]:
    """Two panels (held-out mixtures of seen targets; leave one target out), change from the single
    adapter in points, one colour per target, the diagonal for reference; k = 1 rows left out."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), sharex=True, sharey=True)
    scored = data.k >= 2
    targets = sorted(set(data.targets[scored].tolist()))
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(targets), 2)))
    lo = float(np.nanmin(data.y[scored])) if scored.any() else -1.0
    hi = float(np.nanmax(data.y[scored])) if scored.any() else 1.0
    for ax, key, title, scores in ((axes[0], "heldout", f"held-out mixtures ({report.folds}-fold)", report.heldout),
                                   (axes[1], "loto", "leave one target out", report.loto)):
        pred = report.predictions[key]
        for t, c in zip(targets, colours, strict=False):
            m = scored & (data.targets == t)
            ax.scatter(data.y[m], pred[m], s=14, alpha=0.75, color=c, label=t)
        ax.plot([lo, hi], [lo, hi], color="0.5", lw=1, ls="--")
        s = scores["all features"]
        ax.set_title(f"{title}\nSpearman within targets {s.spearman_within:+.2f}, MAE {s.mae_points:.1f} pts",
                     fontsize=10)
        ax.set_xlabel("measured change from the single adapter (pts)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("predicted change (pts)")
    axes[1].legend(fontsize=7, loc="best", ncol=2)
    fig.tight_layout()
    return save_figure(fig, path)
