"""``reports/index.html``: the report as one self-contained page, opened in any browser with no server.

It starts with the CNN-vs-RNN comparison (each application's headline figure with its 95% interval,
its baseline measured by the same code, its bar, and a published figure for the task), then holds
every section of ``reports/report.md``. The pictures are embedded as ``data:`` URLs and the style is
inline, so the one file can be mailed, attached to an MLflow run or kept as a DVC output.

The Markdown is the report's own (headings, pipe tables, fenced text, pictures, ``code`` and
**bold**), turned into HTML here rather than by a Markdown package.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

from cnnrnn.atomic import write_text_atomically
from cnnrnn.registry import APPLICATIONS

PICTURE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<path>[^)]+)\)")
WORD_ORDER_APP, WORD_ORDER_MODELS = "sentiment", ("rnn", "cnn")  # the one task where a CNN and an RNN meet
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 96rem; padding: 0 1rem; color: #222; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 1px solid #ccc; margin-top: 2.5rem; }
div.table { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .9rem; }
table.comparison { width: 100%; } table.comparison td:nth-child(3) { min-width: 12rem; }
table.comparison td:nth-child(9) { min-width: 16rem; }
td code { overflow-wrap: anywhere; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } tr:nth-child(even) td { background: #fafafa; }
td.CNN { color: #1f5fa8; font-weight: 600; } td.RNN { color: #a8501f; font-weight: 600; }
pre { background: #f6f6f6; padding: .6rem; overflow-x: auto; white-space: pre-wrap; }
img { max-width: 100%; border: 1px solid #ddd; margin: .4rem 0; }
nav a { margin-right: .8rem; } .missed { color: #b00020; font-weight: 600; }
"""


def inline(text: str) -> str:
    """Escaped text with the report's inline Markdown: ``code``, **bold** and links within the page."""
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r'<strong class="missed">\1</strong>', text)
    return re.sub(r"\[([^\]]+)\]\((#[\w-]+)\)", r'<a href="\2">\1</a>', text)  # [text](#anchor): within the page


def cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def table_html(rows: list[str], classes: dict[str, str]) -> str:
    """A pipe table (header, separator, body) as an HTML table; ``classes`` maps a cell's text to its CSS class."""
    head = "".join(f"<th>{inline(c)}</th>" for c in cells(rows[0]))
    body = "".join("<tr>" + "".join(f'<td class="{classes[c]}">{inline(c)}</td>' if c in classes else f"<td>{inline(c)}</td>"
                                    for c in cells(row)) + "</tr>" for row in rows[2:])
    kind = ' class="comparison"' if cells(rows[0])[0] == "network" else ""
    return f'<div class="table"><table{kind}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def picture_id(path: Path) -> str:
    """``plots/classify/confusion_matrix.png`` -> ``classify-confusion_matrix``: what the comparison links to."""
    return f"{path.parent.name}-{path.stem}"


def picture_html(alt: str, path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure id="{picture_id(path)}"><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(path.parent.name)}: {html.escape(alt)}</figcaption></figure>")


def markdown_to_html(markdown: str, base: Path) -> str:
    """The report's Markdown as HTML; pictures are read relative to ``base`` and embedded."""
    lines, parts, i = markdown.splitlines(), [], 0
    network_classes = {"CNN": "CNN", "RNN": "RNN"}
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines))
            parts.append(f"<pre>{html.escape(chr(10).join(lines[i + 1:end]))}</pre>")
            i = end + 1
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            title = line[level:].strip()
            parts.append(f'<h{level} id="{re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")}">{inline(title)}</h{level}>')
            i += 1
        elif line.startswith("|"):
            end = next((j for j in range(i, len(lines)) if not lines[j].startswith("|")), len(lines))
            parts.append(table_html(lines[i:end], network_classes))
            i = end
        elif match := PICTURE.fullmatch(line.strip()):
            parts.append(picture_html(match["alt"], (base / match["path"]).resolve()))
            i += 1
        elif line.strip():
            end = next((j for j in range(i, len(lines)) if not lines[j].strip() or lines[j].startswith(("|", "#", "```"))
                        or PICTURE.fullmatch(lines[j].strip())), len(lines))
            parts.append(f"<p>{inline(' '.join(lines[i:end]))}</p>")
            i = end
        else:
            i += 1
    return "\n".join(parts)


def comparison_markdown(root: Path) -> list[str]:
    """The CNN-vs-RNN table: what each network is used for, and how well it did here, next to the literature."""
    from cnnrnn.reporting import comparison_rows, summary_rows

    lines = ["## CNNs and RNNs, measured here", "",
             "CNNs look at grids of pixels: which class, where, which texture. RNNs read sequences in order: a sentence "
             "whose meaning turns on word order, the next word, a translation, the next chord. Each row is one application "
             "of this pipeline, scored on its held-out test split; the interval is the 95% bootstrap interval over test "
             "items, the baseline is measured by the same code, and the published figure is the task's classic result "
             "(on other data, unless it says so: a reference for scale, not a comparison).", "",
             "| network | application | what it does | headline | test [95% interval] | before | baseline, same measurement "
             "| bar | bars met | published figure | pictures |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for network in ("CNN", "RNN"):
        for row in summary_rows(root):
            app = APPLICATIONS[row["application"]]
            if app.network != network:
                continue
            bar = row["bar"].replace("missed", "**missed**")
            bars_met = row["bars met"].replace("missed", "**missed**")
            pictures = ", ".join(f"[{p.stem}](#{picture_id(p)})" for p in sorted((root / "plots" / app.name).glob("*.png")))
            lines.append(f"| {network} | [{app.name}](#{app.name}) | {app.summary} | `{row['headline']}` "
                         f"| {row['measured [95% interval]']} | {row['before'] or '—'} | {row['baseline']} | {bar} "
                         f"| {bars_met} | {app.reference} "
                         f"| {pictures} |")
    lines.append("")
    path = root / "metrics" / f"{WORD_ORDER_APP}.json"
    if path.is_file():
        metrics = json.loads(path.read_text())
        a, b = WORD_ORDER_MODELS
        pair = {k: v for k, v in metrics.items() if k.startswith(f"{a}_vs_{b}_")}
        rows = comparison_rows(pair)
        if rows:
            lines += [f"Where word order matters, a CNN and an RNN meet on the same sentences ({WORD_ORDER_APP}: "
                      "\"good, not bad\" against \"bad, not good\"). The RNN minus the CNN, paired over the same test "
                      "items; \"better\" only where the whole interval lies above 0:", "",
                      "| a vs b, metric | difference [95% interval] | McNemar p | verdict |", "|---|---|---|---|", *rows, ""]
    return lines


def write_page(root: Path, report_markdown: str) -> Path:
    """``reports/index.html`` from the comparison and the report's Markdown (written to ``reports/report.md``)."""
    reports = root / "reports"
    comparison = "\n".join(comparison_markdown(root))
    title, _, body = report_markdown.partition("\n")
    nav = " ".join(f'<a href="#{name}">{name}</a>' for name in APPLICATIONS if f"## {name}\n" in report_markdown)
    page = "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',  # no request for /favicon.ico
        "<title>cnnrnn report</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
        markdown_to_html(title, reports), f"<nav>{nav}</nav>",
        markdown_to_html(comparison, reports),
        markdown_to_html(body, reports),
        "</body>", "</html>", ""])
    return write_text_atomically(reports / "index.html", page)
