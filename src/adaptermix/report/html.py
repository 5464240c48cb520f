"""HTML building blocks of the report: one self-contained page (inline CSS, no scripts, no external
URLs), relative links to the figure and table files beside it. Every text from the store is escaped.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from adaptermix.report.statements import Statement, Verdict
from adaptermix.report.tables import Table, fmt

#: Tables longer than this are folded into a <details> element.
FOLD_ROWS = 25

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0;
       color: #1d2327; background: #fafafa; line-height: 1.45; }
header { background: #243b53; color: #fff; padding: 1.2em 2em; }
header h1 { margin: 0 0 .2em 0; font-size: 1.6em; }
main { max-width: 1280px; margin: 0 auto; padding: 1em 2em 3em 2em; }
nav ul { columns: 3; list-style: none; padding-left: 0; }
section { background: #fff; border: 1px solid #e2e8f0; border-radius: 6px; padding: .6em 1.4em 1em 1.4em;
          margin: 1.2em 0; }
h2 { border-bottom: 2px solid #e2e8f0; padding-bottom: .2em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #52606d; }
table { border-collapse: collapse; margin: .6em 0; font-size: .85em; }
th, td { border: 1px solid #d9e2ec; padding: .25em .55em; text-align: right; }
th { background: #f0f4f8; }
td.t, th.t { text-align: left; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: .3em; }
.note { font-size: .85em; color: #52606d; }
.notrun { color: #8d2b0b; font-style: italic; }
.yes { color: #0b6e4f; font-weight: 600; } .partly { color: #9a6700; font-weight: 600; }
.no { color: #b42318; font-weight: 600; } .na { color: #7b8794; }
pre { background: #f5f7fa; border: 1px solid #e2e8f0; padding: .8em; overflow-x: auto; font-size: .8em; }
mark { background: #ffe08a; }
.adv td, .adv th { text-align: left; vertical-align: top; max-width: 36em; }
"""


def page(title: str, subtitle: str, nav: Sequence[tuple[str, str]], body: str) -> str:
    """The whole document."""
    links = "".join(f'<li><a href="#{escape(a)}">{escape(t)}</a></li>' for a, t in nav)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}</title>'
        f"<style>{CSS}</style></head><body><header><h1>{escape(title)}</h1><div>{escape(subtitle)}</div></header>"
        f"<main><nav><ul>{links}</ul></nav>{body}</main></body></html>\n"
    )


def section(anchor: str, title: str, body: str, level: int = 2) -> str:
    tag = f"h{level}"
    return f'<section id="{escape(anchor)}"><{tag}>{escape(title)}</{tag}>{body}</section>'


def sub(title: str, body: str) -> str:
    return f"<h3>{escape(title)}</h3>{body}"


def paragraph(text: str, cls: str = "") -> str:
    return f'<p class="{cls}">{escape(text)}</p>' if cls else f"<p>{escape(text)}</p>"


def not_run(what: str) -> str:
    return f'<p class="notrun">{escape(what)}: not run in this study.</p>'


def figure(png: str, svg: str | None, caption: str) -> str:
    """An image with a caption and a link to its SVG (paths relative to index.html)."""
    link = f' (<a href="{escape(svg)}">SVG</a>)' if svg else ""
    return (
        f'<figure><img src="{escape(png)}" alt="{escape(caption)}" loading="eager">'
        f"<figcaption>{escape(caption)}{link}</figcaption></figure>"
    )


def table(t: Table, csv_href: str | None = None) -> str:
    """A :class:`Table` as HTML; text columns left-aligned, long tables folded."""
    text_cols = {i for i, _ in enumerate(t.columns) if t.rows and all(isinstance(r[i], str) for r in t.rows)}

    def cell(tag: str, i: int, v: Any) -> str:
        cls = ' class="t"' if i in text_cols else ""
        return f"<{tag}{cls}>{escape(fmt(v, t.digits))}</{tag}>"

    head = "".join(cell("th", i, c) for i, c in enumerate(t.columns))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in t.rows)
    link = f' <a href="{escape(csv_href)}">CSV</a>' if csv_href else ""
    html = (
        f"<table><caption>{escape(t.title)}{link}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )
    if t.note:
        html += f'<p class="note">{escape(t.note)}</p>'
    if len(t.rows) > FOLD_ROWS:
        html = f"<details><summary>{escape(t.title)} ({len(t.rows)} rows)</summary>{html}</details>"
    return html


def key_values(items: Mapping[str, Any]) -> str:
    rows = "".join(
        f'<tr><th class="t">{escape(str(k))}</th><td class="t">{escape(str(v))}</td></tr>'
        for k, v in items.items()
    )
    return f"<table>{rows}</table>"


def statements(rows: Sequence[Statement]) -> str:
    """The findings table: section, the paper's claim, this run's numbers, verdict."""
    css = {
        Verdict.SUPPORTS: ("yes", "supports"),
        Verdict.PARTLY: ("partly", "partly supports"),
        Verdict.CONTRADICTS: ("no", "does not support"),
        Verdict.NOT_RUN: ("na", "—"),
    }
    body = "".join(
        f'<tr><td class="t">{escape(s.section)}</td><td class="t">{escape(s.paper)}</td>'
        f'<td class="t">{escape(s.result)}</td><td class="t {css[s.verdict][0]}">{css[s.verdict][1]}</td></tr>'
        for s in rows
    )
    return (
        '<table><thead><tr><th class="t">finding</th><th class="t">paper</th><th class="t">this study</th>'
        f'<th class="t">verdict</th></tr></thead><tbody>{body}</tbody></table>'
    )


def topics(data: Mapping[str, Any]) -> str:
    """Fig. 2b / Tables 4-16: per dataset, a folded table of topics and their top words."""
    parts = []
    for name, entry in data.get("datasets", {}).items():
        if "skipped" in entry:
            parts.append(f"<p><b>{escape(name)}</b>: skipped ({escape(str(entry['skipped']))}).</p>")
            continue
        rows = "".join(
            f'<tr><td>{i}</td><td class="t">{escape(", ".join(words))}</td></tr>'
            for i, words in enumerate(entry["topics"], 1)
        )
        parts.append(
            f"<details><summary>{escape(name)} ({entry.get('n_docs', '?')} documents)</summary>"
            f'<table><thead><tr><th>#</th><th class="t">top words</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></details>"
        )
    params = data.get("params", {})
    note = ", ".join(f"{k} = {v}" for k, v in params.items())
    return "".join(parts) + (f'<p class="note">LDA parameters: {escape(note)}</p>' if note else "")


def _marked(words: Sequence[str], other: Sequence[str]) -> str:
    """``words`` with the words that differ from ``other`` highlighted."""
    out = []
    matcher = difflib.SequenceMatcher(a=list(other), b=list(words), autojunk=False)
    for op, _, _, j1, j2 in matcher.get_opcodes():
        chunk = escape(" ".join(words[j1:j2]))
        if chunk:
            out.append(chunk if op == "equal" else f"<mark>{chunk}</mark>")
    return " ".join(out)


def adversarial(examples: Sequence[Mapping[str, Any]]) -> str:
    """Original vs adversarial text of stored TextFooler examples, changed words highlighted."""
    rows = []
    for e in examples:
        orig, adv = str(e["original"]).split(), str(e["adversarial"]).split()
        if e.get("original_pair"):
            orig += ["||"] + str(e["original_pair"]).split()
            adv += ["||"] + str(e.get("adversarial_pair") or e["original_pair"]).split()
        outcome = (
            f"{e.get('original_prediction')} → {e.get('new_prediction')}"
            f" ({'success' if e['success'] else 'failed'})"
        )
        rows.append(
            f"<tr><td>{escape(str(e['target']))}</td><td>{e['k']}</td>"
            f"<td>{escape(str(e['original_label']))}</td><td>{escape(outcome)}</td>"
            f"<td>{_marked(orig, adv)}</td><td>{_marked(adv, orig)}</td></tr>"
        )
    return (
        '<table class="adv"><thead><tr><th>target</th><th>k</th><th>label</th><th>prediction</th>'
        f"<th>original</th><th>adversarial</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def preformatted(text: str) -> str:
    return f"<pre>{escape(text)}</pre>"
