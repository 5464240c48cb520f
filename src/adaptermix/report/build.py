"""``build_report(study_dir)``: the study's figures, tables and statements as one self-contained folder.

``{study}/report/`` holds ``index.html`` (inline CSS, no scripts, no external URLs), ``figures/*.png|svg``
and ``tables/*.csv``, linked relatively, so the folder can be copied or zipped as it is. The folder is
written as a whole (:func:`adaptermix.core.io.atomic_dir`): a reader sees the old report or the new one.
Everything is read from the results stores and the study's JSON files (plotting never computes); a part
the study did not run is reported as "not run in this study".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

from adaptermix._version import __version__
from adaptermix.core.io import atomic_dir, atomic_write_text, mark_output, output_stamp
from adaptermix.evaluations.registry import EVALUATION_KINDS, label_of, report_order
from adaptermix.report import figures as F
from adaptermix.report import html as H
from adaptermix.report import tables as T
from adaptermix.report.data import SPARSE_LABELS, MethodData, StudyData, load_study
from adaptermix.report.plots import save_figure
from adaptermix.report.statements import Statement, Verdict, method_statements, summary_counts
from adaptermix.sweep.store import git_revision
from adaptermix.training.metrics import NEAR_BASELINE_PP


class _Assets:
    """Writes figures and tables under the report folder and returns the HTML that shows them."""

    def __init__(self, root: Path, formats: Sequence[str]) -> None:
        self.root = root
        self.formats = tuple(dict.fromkeys(("png", *formats)))  # the page shows the PNG

    def figure(self, name: str, make: Callable[[], F.Figure], caption: str) -> str:
        save_figure(make(), self.root / "figures" / name, self.formats)
        svg = f"figures/{name}.svg" if "svg" in self.formats else None
        return H.figure(f"figures/{name}.png", svg, caption)

    def table(self, table: T.Table) -> str:
        table.write_csv(self.root / "tables")
        return H.table(table, f"tables/{table.name}.csv")


# ------------------------------------------------------------------------------------------ sections


def _datasets(study: StudyData, a: _Assets) -> str:
    sim_data = study.similarity or {}
    if sim_data.get("names"):
        n_docs = max((sim_data.get("n_docs") or {}).values(), default=0)
        sim = a.figure(
            "fig2a_similarity",
            lambda: F.similarity_heatmap(sim_data),
            f"Fig. 2a: cosine similarity between dataset centroids ({sim_data.get('encoder', '?')} embeddings "
            f"of up to {n_docs} documents each). {sim_data.get('note', '')}",
        )
    else:
        sim = H.not_run("Dataset similarity (Fig. 2a)")
    top = (
        H.topics(study.topics)
        if study.topics and study.topics.get("datasets")
        else H.not_run("LDA topics (Fig. 2b)")
    )
    single = (
        a.table(T.single_adapter_table(study.single, study.baselines)) + _near_baseline_note(study)
        if study.single
        else H.not_run("Single adapters")
    )
    return (
        H.sub("Fig. 2a: semantic similarity", sim)
        + H.sub("Fig. 2b: LDA topics per dataset", top)
        + H.sub("Single adapters", single)
    )


def _near_baseline_note(study: StudyData) -> str:
    """One sentence naming the adapters within NEAR_BASELINE_PP points of their baseline (or none)."""
    near = [f"{m}/{d}" for m in sorted(study.single) for d in study.near_baseline(m)]
    if not near:
        return H.paragraph(
            f"Every adapter with a stored baseline beats it by at least {NEAR_BASELINE_PP:g} points."
        )
    return H.paragraph(
        f"⚠ {len(near)} adapter(s) within {NEAR_BASELINE_PP:g} points of (or below) their constant-prediction "
        f"baseline: {', '.join(near)}. They learnt little, so mixing them can lose little; findings computed "
        "on these targets are marked ⚠"
        + (
            " and were excluded from the statistics."
            if study.excluded_near_baseline
            else " (rebuild with --exclude-near-baseline to leave them out)."
        )
    )


def mark_near_baseline(statements: Sequence[Statement], near: Sequence[str], excluded: bool) -> list[Statement]:
    """Each statement with a ⚠ note naming the near-baseline targets it was computed on (or left out)."""
    if not near:
        return list(statements)
    note = (
        f" ⚠ Targets within {NEAR_BASELINE_PP:g} pts of their baseline "
        + ("left out: " if excluded else "included: ")
        + ", ".join(near)
        + "."
    )
    return [s if s.verdict is Verdict.NOT_RUN else replace(s, result=s.result + note) for s in statements]


def _sweep_part(md: MethodData, a: _Assets) -> str:
    m = md.label
    per_k = md.per_k_by_eval()
    if not per_k:
        return H.sub("Fig. 3: metric vs k", H.not_run("The combinatorial sweep"))
    missing = [label_of(e) for e in report_order(EVALUATION_KINDS.names()) if e not in per_k]
    body = a.figure(
        f"fig3_per_k_{m}",
        lambda: F.per_k_grid(per_k, f"{m}: metric vs number of mixed adapters"),
        f"Fig. 3: per target, mean and min–max of the metric over the mixtures of k adapters ({m}).",
    )
    body += "".join(H.not_run(f"{name} evaluation") for name in missing)
    body += a.table(T.drop_table(md.drops(), m)) + a.table(T.per_k_table(per_k, m))
    return H.sub("Fig. 3 and Table 1: metric vs number of mixed adapters", body)


def _fsd_part(md: MethodData, a: _Assets) -> str:
    m = md.label
    fig4 = (
        a.figure(
            f"fig4_fsd_{m}",
            lambda: F.fsd_matrix_figure(md.fsd or {}, f"FSD (%), {m}"),
            f"Fig. 4: fraction of sign difference between every pair of {m} adapters.",
        )
        if md.fsd
        else H.not_run("FSD matrix (Fig. 4)")
    )
    pop = md.population("clean")
    single = {s.target: s.mean for s in md.per_k("clean") if s.k == 1}
    pairs = [r for r in pop if r["k"] == 2 and r["mean_pairwise_fsd"] is not None]
    fig5 = (
        a.figure(
            f"fig5_fsd_k2_{m}",
            lambda: F.fsd_pairs_grid(pairs, single, title=f"{m}: mixing two adapters"),
            "Fig. 5: bars: FSD between the target's adapter and each partner (mean pairwise FSD of the "
            "pair); solid red: the pair's metric; dashed blue: the target's single adapter.",
        )
        if pairs
        else H.not_run("k = 2 mixtures (Fig. 5)")
    )
    many = [r for r in pop if r["k"] > 2 and r["target_sign_change"] is not None]
    fig6 = (
        a.figure(
            f"fig6_fsd_kmany_{m}",
            lambda: F.fsd_by_k_grid(pop, md.per_k("clean"), title=f"{m}: mixing k adapters"),
            "Fig. 6: bars: mean fraction of the target adapter's weights whose sign the mixture flips "
            "(target sign-change), per k; solid red: mean metric; dashed blue: single adapter.",
        )
        if many
        else H.not_run("k > 2 mixtures (Fig. 6)")
    )
    for extra in (T.fsd_floor_table(md.fsd, m), T.fsd_kind_table(md.fsd, m)) if md.fsd else ():
        if extra is not None:
            fig4 += a.table(extra)
    corr = md.correlations()
    table = a.table(T.correlation_table(corr, m)) if corr else H.not_run("FSD–accuracy correlations")
    return (
        H.sub("Fig. 4: FSD of the adapter pool", fig4)
        + H.sub("Fig. 5: k = 2", fig5)
        + H.sub("Fig. 6: k > 2", fig6)
        + H.sub("FSD–accuracy correlation (Sections 5.3–5.4)", table)
    )


def _greedy_part(md: MethodData, a: _Assets) -> str:
    rows = md.greedy()
    if not any(g.target == "*" for g in rows):
        return H.sub("Fig. 7: greedy mixing", H.not_run("Greedy FSD mixing (Alg. 1)"))
    soup = F.has_soup(rows)
    caption = (
        "Fig. 7: greedy min-FSD and max-FSD mixtures of l adapters vs the best and worst evaluated "
        "mixture of l adapters (empirical bounds), averaged over targets."
    )
    if soup:
        caption += (
            " Also AdapterSoup's selections (the first l adapters of its similarity and clustering "
            "selections; each averaged over the targets whose selection reaches l) and random selection: "
            "the mean over every evaluated mixture of l adapters that contains the target, the expected "
            "metric of a uniformly random pick."
        )
    fig = a.figure(
        f"fig7_greedy_{md.label}",
        lambda: F.greedy_figure(rows, f"{md.label}: " + ("which adapters to mix" if soup else "greedy FSD mixing")),
        caption,
    )
    body = fig + a.table(T.greedy_table(rows, md.label))
    wins = md.selection_wins()
    if wins:
        counts = T.selection_wins(wins)
        body += H.paragraph(
            "Which selection wins at equal l (targets × l ≥ 2, ties count for none): "
            + ", ".join(f"{name} {n}" for name, n in counts.items())
            + f" of {len(wins)}."
        )
        body += a.table(T.selection_table(wins, md.label))
    if md.soup_choices():
        body += a.table(T.soup_choice_table(md.soup_choices(), md.label))
    title = "Fig. 7: greedy mixing vs empirical bounds" + (", AdapterSoup and random selection" if soup else "")
    return H.sub(title, body)


def _rules_part(md: MethodData, a: _Assets) -> str:
    """"Which rule?": every merge rule's all-domain mixture against the single adapters (when the store holds
    two rules or more at k = N; nothing otherwise)."""
    rows = md.rules()
    if not rows:
        return ""
    best = min((r for r in rows if r.target == "*"), key=lambda r: r.drop_pts)
    fig = a.figure(
        f"rules_drop_{md.label}",
        lambda: F.rule_drop_figure(rows, f"{md.label}: the all-domain mixture, rule by rule"),
        "Which rule? Mean drop of the all-domain mixture (k = N) from each target's single adapter, in "
        "points, per merge rule (hatched: masked rules, 1 bit per parameter + a scale per domain).",
    )
    text = H.paragraph(
        f"Best: {best.rule}, {best.drop_pts:.1f} points below the single adapters on average "
        f"({best.pct_of_single:.1f} % of single) over {best.n} targets; per-domain storage: {best.storage}."
    )
    return H.sub(
        "Which rule? The all-domain mixture per merge rule",
        fig + text + a.table(T.rule_table(rows, md.label)) + a.table(T.rule_target_table(rows, md.label)),
    )


def _pruning_part(md: MethodData, a: _Assets) -> str:
    m = md.label
    singles = {v: sparse for v in ("adapter", "layer") if (sparse := md.sparse_per_k(v))}
    every, guided = md.sparse_per_k("every_layer"), md.sparse_per_k("fsd_guided")
    if not singles and not every and not guided:
        return H.sub("Fig. 8: pruning", H.not_run("Pruning and sparse mixing (Sec. 7)"))
    body = "" if "adapter" in singles else H.not_run("Fig. 8a with the paper's whole-adapter top-d % selection")
    for variant, sparse in singles.items():
        curve = T.sparsity_curve(md.per_k("clean"), sparse)
        label = SPARSE_LABELS[variant]
        body += a.figure(
            f"fig8a_sparsity_{m}_{variant}",
            partial(F.sparsity_figure, curve, f"{m}: single sparse adapters, {label}"),
            f"Fig. 8a ({label}): single-adapter metric averaged over domains vs sparsity (0% = dense).",
        )
        body += a.table(T.sparsity_table(curve, m, variant))
    curves = T.sparse_mixing_curves(md.per_k("clean"), every, guided)
    if any(name.endswith("mean") and "sparse" in name for name in curves):
        body += a.figure(
            f"fig8b_sparse_mixing_{m}",
            lambda: F.sparse_mixing_figure(curves, f"{m}: mixing sparse adapters"),
            "Fig. 8b: mean over mixtures of sparse adapters (solid; every layer pruned, and Alg. 4's "
            "FSD-guided choice of the m most conflicting layers when run) vs dense mixtures: mean (dashed "
            "red) and max, the empirical upper bound (dashed blue); averaged over targets.",
        )
        body += a.table(T.sparse_mixing_table(curves, m))
        if not guided:
            body += H.not_run("Alg. 4 with the FSD-guided layer choice (pruning.fsd_layers)")
    else:
        body += H.not_run("Mixtures of sparse adapters (Fig. 8b)")
    return H.sub("Fig. 8: pruning and mixing sparse adapters", body)


def _adversarial_part(md: MethodData) -> str:
    body = (
        H.adversarial(md.adversarial)
        if md.adversarial
        else H.not_run("Stored adversarial examples (TextFooler)")
    )
    from adaptermix.attacks.resources import judge_note  # lazily: the attacks package imports torch

    for judge, same in sorted(md.textfooler_judges().items()):
        body += H.paragraph(judge_note(judge) if same else f"TextFooler's sentence-similarity judge: {judge}.")
    return H.sub("Adversarial examples (a sample)", body)


def _method_section(md: MethodData, a: _Assets) -> str:
    body = '<p>The statements of the paper\'s findings for this method are in the <a href="#overview">overview</a>.</p>'
    body += _sweep_part(md, a) + _rules_part(md, a) + _fsd_part(md, a) + _greedy_part(md, a) + _pruning_part(md, a)
    body += _adversarial_part(md)
    return H.section(f"method-{md.label}", f"Method: {md.label}", body)


def _provenance(study: StudyData) -> str:
    items = {"report built by adaptermix": __version__, "report git revision": git_revision()}
    for md in study.methods:
        runs = {(p["package_version"], p["git_revision"], p["model_fingerprint"]) for p in md.provenance}
        for i, (version, rev, fingerprint) in enumerate(sorted(runs), 1):
            items[f"{md.label} run {i}"] = f"adaptermix {version}, git {rev}, model fingerprint {fingerprint}"
        if md.provenance:
            items[f"{md.label} runs started"] = ", ".join(sorted({p["started_at"] for p in md.provenance}))
    return H.key_values(items)


# --------------------------------------------------------------------------------------------- build


REPORT_STAMP = output_stamp("report", "the study's report folder")
"""The output stamp of ``{study}/report`` (the same whether ``reproduce`` or ``report`` built it)."""


def build_report(
    study_dir: str | Path, formats: Sequence[str] = ("png", "svg"), exclude_near_baseline: bool = False
) -> Path:
    """Write ``{study}/report/`` (index.html, figures/, tables/) from the study's stored results; returns
    the path of ``index.html``. Figures are saved in ``formats`` (the page shows the PNG, links the SVG).
    ``exclude_near_baseline`` leaves the targets whose adapter is within 2 points of its constant-prediction
    baseline out of every method's statistics (they are marked either way)."""
    study = load_study(study_dir, exclude_near_baseline)
    out = Path(study_dir) / "report"
    statements = {
        md.label: mark_near_baseline(
            method_statements(md), study.near_baseline(md.label), study.excluded_near_baseline
        )
        for md in study.methods
    }
    with atomic_dir(out) as tmp:
        a = _Assets(tmp, formats)
        counts = summary_counts(statements)
        overview = H.paragraph(
            f"{len(study.methods)} method(s): {', '.join(md.label for md in study.methods) or 'none'}. "
            "Findings: "
            + ", ".join(f"{n} {verdict.tally}" for verdict, n in counts.items())
            + ". Differences are in percentage points (pp = metric × 100)."
        )
        overview += "".join(
            H.sub(f"Findings: {label}", H.statements(rows)) for label, rows in statements.items()
        )
        parts = [
            ("overview", "Overview and findings", overview),
            ("datasets", "Datasets and single adapters", _datasets(study, a)),
        ]
        body = "".join(H.section(anchor, title, html) for anchor, title, html in parts)
        # The findings are listed once, in the overview; method sections hold the figures and tables.
        body += "".join(_method_section(md, a) for md in study.methods)
        if not study.methods:
            body += H.section("methods", "Methods", H.not_run("Adapter methods (no results stores found)"))
        config = H.preformatted(study.config_text) if study.config_text else H.not_run("config.yaml")
        body += H.section("provenance", "Provenance", _provenance(study))
        body += H.section("config", "Configuration (config.yaml)", config)
        nav = [(a_, t) for a_, t, _ in parts] + [
            (f"method-{md.label}", f"Method: {md.label}") for md in study.methods
        ]
        nav += [("provenance", "Provenance"), ("config", "Configuration")]
        index = H.page(f"adaptermix report: {study.name}", f"study directory {study.root}", nav, body)
        atomic_write_text(tmp / "index.html", index)
    mark_output(out, REPORT_STAMP)  # `adaptermix report` may rebuild it; it holds nothing else
    return out / "index.html"
