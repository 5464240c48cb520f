"""Small matplotlib helpers shared by the CLI and the report (headless: the Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from adaptermix.io import atomic_path  # noqa: E402


def save_figure(fig: plt.Figure, path: str | Path, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Save ``fig`` atomically as ``path`` with each suffix in ``formats``; closes the figure."""
    out = []
    base = Path(path).with_suffix("")
    for fmt in formats:
        target = base.with_suffix(f".{fmt}")
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=130, bbox_inches="tight")
        out.append(target)
    plt.close(fig)
    return out


def fsd_heatmap(values: np.ndarray, names: Sequence[str], title: str) -> plt.Figure:
    """Fig. 4: heatmap of the FSD matrix in percent, annotated."""
    n = len(names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.62 * n, 0.8 + 0.55 * n))
    im = ax.imshow(values * 100, cmap="viridis", vmin=0)
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), names)
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                f"{values[i, j] * 100:.1f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if values[i, j] < values.max() * 0.6 else "black",
            )
    fig.colorbar(im, ax=ax, label="FSD (%)")
    ax.set_title(title)
    return fig
