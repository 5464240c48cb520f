"""Small matplotlib helpers shared by the CLI and the report (headless: the Agg backend)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from adaptermix.core.io import atomic_path  # noqa: E402


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


def annotated_heatmap(
    values: np.ndarray,
    names: Sequence[str],
    title: str,
    *,
    cmap: str,
    colorbar_label: str,
    fmt: str,
    dark_text: Callable[[float], bool],
    vmin: float | None = None,
    vmax: float | None = None,
    margin: tuple[float, float] = (1.0, 0.8),
) -> plt.Figure:
    """The one annotated square heatmap (Fig. 2a similarity, Fig. 4 FSD): ``values`` [n, n] drawn with
    ``cmap``, each cell written with ``fmt``, in black where ``dark_text(value)`` else in white."""
    n = len(names)
    fig, ax = plt.subplots(figsize=(margin[0] + 0.62 * n, margin[1] + 0.55 * n))
    im = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), names)
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                format(values[i, j], fmt),
                ha="center",
                va="center",
                fontsize=7,
                color="black" if dark_text(float(values[i, j])) else "white",
            )
    fig.colorbar(im, ax=ax, label=colorbar_label)
    ax.set_title(title)
    return fig


def fsd_heatmap(values: np.ndarray, names: Sequence[str], title: str) -> plt.Figure:
    """Fig. 4: heatmap of the FSD matrix in percent, annotated."""
    percent = values * 100
    top = float(values.max()) * 0.6 * 100
    return annotated_heatmap(percent, names, title, cmap="viridis", colorbar_label="FSD (%)", fmt=".1f",
                             dark_text=lambda v: not v < top, vmin=0)
