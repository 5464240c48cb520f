"""Each figure function on the synthetic study: the expected panels and series, non-empty PNG + SVG."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.collections import PolyCollection

from adaptermix.report import figures as F
from adaptermix.report import tables as T
from adaptermix.report.data import load_study
from adaptermix.report.plots import save_figure
from test_report_data import MIX_SPARSITIES, SPARSITIES, TARGETS, make_study

N = len(TARGETS)


@pytest.fixture(scope="module")
def md(tmp_path_factory: pytest.TempPathFactory):
    study = load_study(make_study(tmp_path_factory.mktemp("figs")))
    return study.methods[0], study


def _saved(fig, path: Path) -> None:
    """Saving writes a non-empty PNG and SVG."""
    png, svg = save_figure(fig, path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    assert b"<svg" in svg.read_bytes()[:500]


def _lines(ax) -> list:
    return [line for line in ax.get_lines() if not line.get_label().startswith("_child")]


def test_fig2a_similarity_heatmap(md, tmp_path: Path) -> None:
    _, study = md
    fig = F.similarity_heatmap(study.similarity)
    assert len(fig.axes) == 2  # heatmap + colour bar
    assert len(fig.axes[0].images) == 1 and len(fig.axes[0].texts) == N * N
    _saved(fig, tmp_path / "sim")


def test_fig3_small_multiples_one_line_and_band_per_evaluation(md, tmp_path: Path) -> None:
    m, _ = md
    per_k = m.per_k_by_eval()
    fig = F.per_k_grid(per_k)
    assert len(fig.axes) == N
    for ax in fig.axes:
        assert len(ax.get_lines()) == 3, "clean, black-box and white-box"
        assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 3, "one min-max band each"
        assert list(ax.get_lines()[0].get_xdata()) == [1, 2, 3, 4]
    assert {t.get_text() for t in fig.legends[0].get_texts()} == {
        "clean",
        "black-box (TextFooler)",
        "white-box (FGSM)",
    }
    _saved(fig, tmp_path / "fig3")
    only_clean = F.per_k_grid({"clean": per_k["clean"]})
    assert all(len(ax.get_lines()) == 1 for ax in only_clean.axes)


def test_fig4_fsd_heatmap(md, tmp_path: Path) -> None:
    m, _ = md
    fig = F.fsd_matrix_figure(m.fsd, "FSD")
    assert len(fig.axes) == 2 and len(fig.axes[0].texts) == N * N
    assert "raw" in fig.axes[1].get_ylabel(), "the FSD space is named"
    _saved(fig, tmp_path / "fig4")


def test_fig5_bars_per_partner_with_mixture_and_single_lines(md, tmp_path: Path) -> None:
    m, _ = md
    pop = m.population("clean")
    single = {s.target: s.mean for s in m.per_k("clean") if s.k == 1}
    fig = F.fsd_pairs_grid([r for r in pop if r["k"] == 2], single)
    assert len(fig.axes) == 2 * N, "a bar axis and a twin metric axis per target"
    bars, lines = fig.axes[:N], fig.axes[N:]  # the twin axes are added after the grid
    assert all(len(ax.patches) == N - 1 for ax in bars), "one bar per partner"
    assert all(len(ax.get_lines()) == 2 for ax in lines), "mixture line + dashed single-adapter line"
    assert lines[0].get_lines()[1].get_linestyle() == "--"
    assert lines[0].get_lines()[1].get_ydata()[0] == pytest.approx(single["A"])
    _saved(fig, tmp_path / "fig5")


def test_fig6_bars_per_k(md, tmp_path: Path) -> None:
    m, _ = md
    fig = F.fsd_by_k_grid(m.population("clean"), m.per_k("clean"))
    assert len(fig.axes) == 2 * N
    assert all(len(ax.patches) == N - 1 for ax in fig.axes[:N]), "k = 2..N"
    assert all(len(ax.get_lines()) == 2 for ax in fig.axes[N:])
    _saved(fig, tmp_path / "fig6")


def test_fig7_greedy_four_series(md, tmp_path: Path) -> None:
    m, _ = md
    fig = F.greedy_figure(m.greedy())
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.get_lines()] == [
        "empirical upper bound",
        "greedy min-FSD",
        "greedy max-FSD",
        "empirical lower bound",
    ]
    assert list(ax.get_lines()[0].get_xdata()) == [1, 2, 3, 4]
    _saved(fig, tmp_path / "fig7")


def test_fig8_sparsity_and_sparse_mixing(md, tmp_path: Path) -> None:
    m, _ = md
    sparse = {s: m.per_k("clean", "sparse_fsd", {"s": s}) for s in m.sparsities()}
    curve = T.sparsity_curve(m.per_k("clean"), sparse)
    fig = F.sparsity_figure(curve)
    (ax,) = fig.axes
    assert len(ax.get_lines()) == 2 and list(ax.get_lines()[0].get_xdata()) == [0] + [
        s * 100 for s in SPARSITIES
    ]
    _saved(fig, tmp_path / "fig8a")
    fig = F.sparse_mixing_figure(T.sparse_mixing_curves(m.per_k("clean"), sparse))
    (ax,) = fig.axes
    assert len(ax.get_lines()) == 2 + len(MIX_SPARSITIES), "dense mean, dense max, one per sparsity"
    assert [line.get_linestyle() for line in ax.get_lines()[:2]] == ["--", "--"]
    _saved(fig, tmp_path / "fig8b")
