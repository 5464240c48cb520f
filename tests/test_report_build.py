"""build_report on the synthetic study: a self-contained folder, every figure linked, missing parts said,
and (marked ``browser``) a real headless Chromium renders it with every image loaded."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from adaptermix.doctor import BROWSER_BINARIES, BROWSER_PACKAGE
from adaptermix.report import build_report
from adaptermix.report.data import load_study
from test_report_data import make_study

IMG = re.compile(r'<img src="([^"]+)"')
HREF = re.compile(r'href="([^"#][^"]*)"')


def _refs(index: Path) -> tuple[set[str], set[str]]:
    html = index.read_text(encoding="utf-8")
    return set(IMG.findall(html)), set(HREF.findall(html))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_report(make_study(tmp_path_factory.mktemp("report")))


def test_index_links_every_figure_and_table(report: Path) -> None:
    root = report.parent
    assert report == root / "index.html" and root.name == "report"
    imgs, hrefs = _refs(report)
    pngs = {p.relative_to(root).as_posix() for p in (root / "figures").glob("*.png")}
    svgs = {p.relative_to(root).as_posix() for p in (root / "figures").glob("*.svg")}
    csvs = {p.relative_to(root).as_posix() for p in (root / "tables").glob("*.csv")}
    assert imgs == pngs and svgs <= hrefs and csvs <= hrefs
    assert all((root / ref).is_file() for ref in imgs | hrefs), "no dangling relative link"
    # 1 dataset figure + 8 per method (Fig. 3, 4, 5, 6, 7, 8a whole adapter and per layer, 8b)
    assert len(pngs) == len(svgs) == 1 + 8 and all((root / p).stat().st_size > 1000 for p in pngs)
    for fig in (
        "fig3_per_k",
        "fig4_fsd",
        "fig5_fsd_k2",
        "fig6_fsd_kmany",
        "fig7_greedy",
        "fig8b_sparse_mixing",
    ):
        assert f"figures/{fig}_pfeiffer.png" in imgs
    assert {"figures/fig8a_sparsity_pfeiffer_adapter.png", "figures/fig8a_sparsity_pfeiffer_layer.png"} <= imgs


def test_self_contained_with_config_provenance_and_examples(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert "name: synthetic" in html, "config.yaml shown"
    assert "fp-synthetic" in html and "model fingerprint" in html, "provenance from the stores"
    assert "<mark>movie</mark>" in html and "<mark>film</mark>" in html, "adversarial words highlighted"
    assert "Table 1" in html and "Single adapters" in html and "Sec. 5.3 (k = 2)" in html
    assert "not run in this study" not in html, "the synthetic study runs everything"
    assert 'id="method-pfeiffer"' in html
    # The overview tallies the verdicts of the findings table below it.
    tally = re.search(r"Findings: (\d+) supported, (\d+) partly supported, (\d+) not supported, (\d+) not run", html)
    assert tally and sum(map(int, tally.groups())) == 9
    verdict_cells = re.findall(r'<td class="t (yes|partly|no|na)">', html)
    assert [verdict_cells.count(c) for c in ("yes", "partly", "no", "na")] == list(map(int, tally.groups()))


def test_missing_inputs_say_not_run_and_rebuild_replaces_the_folder(tmp_path: Path) -> None:
    root = make_study(
        tmp_path,
        methods=("houlsby", "pfeiffer"),
        analysis=False,
        fsd=False,
        textfooler=False,
        greedy=False,
        pruning=False,
    )
    index = build_report(root, formats=("png",))
    html = index.read_text(encoding="utf-8")
    assert 'id="method-houlsby"' in html and 'id="method-pfeiffer"' in html
    for part in (
        "Dataset similarity (Fig. 2a)",
        "LDA topics (Fig. 2b)",
        "FSD matrix (Fig. 4)",
        "Greedy FSD mixing (Alg. 1)",
        "Pruning and sparse mixing (Sec. 7)",
        "black-box (TextFooler) evaluation",
        "Stored adversarial examples (TextFooler)",
    ):
        assert f"{part}: not run in this study." in html, part
    imgs, hrefs = _refs(index)
    assert imgs == {
        f"figures/{f}_{m}.png"
        for f in ("fig3_per_k", "fig5_fsd_k2", "fig6_fsd_kmany")
        for m in ("houlsby", "pfeiffer")
    }
    assert not any(h.endswith(".svg") for h in hrefs) and not list((root / "report").rglob("*.svg"))

    stale = root / "report" / "figures" / "stale.png"
    stale.write_bytes(b"x")
    (root / "houlsby" / "results.sqlite").unlink()
    html = build_report(root, formats=("png",)).read_text(encoding="utf-8")
    assert not stale.exists(), "the report folder is replaced as a whole"
    assert not list(root.glob(".report*")), "no temporary folder left behind"
    assert "Method: houlsby" not in html, "a method without results or FSD is not listed"


def test_empty_study(tmp_path: Path) -> None:
    empty = build_report(tmp_path / "empty")
    assert "Adapter methods (no results stores found): not run in this study." in empty.read_text()


# ------------------------------------------------------------------------------------------ browser

BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
# Appended to a copy of the page: after load, the title says how many images there are and which failed.
PROBE = (
    "<script>window.addEventListener('load',function(){var im=[].slice.call(document.images);"
    "var bad=im.filter(function(i){return !(i.complete&&i.naturalWidth>0)}).map(function(i){"
    "return i.getAttribute('src')});document.title='IMAGES '+im.length+' BROKEN '+bad.length+' '+bad.join(',')"
    ";});</script>"
)


def _find_chromium() -> str | None:
    return next((p for n in BROWSER_BINARIES if (p := shutil.which(n))), None)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; installed with apt-get when missing (skips when that is impossible)."""
    found = _find_chromium()
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip("no chromium, and apt-get is unavailable or not root: cannot install a headless browser")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=300, check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", BROWSER_PACKAGE],  # from the one list
            env=env,
            capture_output=True,
            timeout=600,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"could not install Debian's chromium with apt-get ({type(exc).__name__})")
    found = _find_chromium()
    if not found:
        pytest.skip("apt-get install chromium finished but no chromium binary was found")
    return found


def _run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [browser, *BROWSER_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.browser
def test_report_renders_in_headless_chromium(report: Path, chromium: str, tmp_path: Path) -> None:
    probe_dir = tmp_path / "probe"
    shutil.copytree(report.parent, probe_dir)
    probe = probe_dir / "index.html"
    probe.write_text(
        probe.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8"
    )
    dom = _run(chromium, tmp_path / "profile1", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    title = re.search(r"<title>([^<]*)</title>", dom.stdout)
    assert title, f"no DOM dumped: {dom.stderr[-500:]}"
    n_imgs = len(_refs(report)[0])
    assert title.group(1).strip() == f"IMAGES {n_imgs} BROKEN 0", title.group(1)

    shot = tmp_path / "shot.png"
    _run(chromium, tmp_path / "profile2", "--window-size=1280,2400", f"--screenshot={shot}", report.as_uri())
    assert shot.is_file() and shot.stat().st_size > 10_000
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (2400, 1280)
    assert pixels.std() > 10 and len(np.unique(pixels)) > 50, "the screenshot is blank"


def test_the_report_says_when_textfoolers_judge_is_the_victims_backbone(tmp_path: Path) -> None:
    from dataclasses import replace

    from adaptermix.report.build import _adversarial_part
    from test_report_data import make_results, write_store

    results = [
        replace(r, metrics={**r.metrics, "sentence_encoder": "org/minilm", "sentence_encoder_is_victim_backbone": True})
        if r.trial.evaluation == "textfooler"
        else r
        for r in make_results(greedy=False, pruning=False)
    ]
    root = make_study(tmp_path)
    for old in (root / "pfeiffer").glob("results.sqlite*"):
        old.unlink()
    write_store(root / "pfeiffer" / "results.sqlite", results)
    (md,) = load_study(root).methods
    assert md.textfooler_judges() == {"org/minilm": True}
    assert "scored by org/minilm, the victim&#x27;s own backbone" in _adversarial_part(md)
