"""The ``report`` stage: every application's metrics and pictures on one Markdown page.

Reads ``metrics/*.json``, the quality bars of ``<app>.evaluate.quality_bars`` (and the
``<app>.evaluate.notes`` shown beside metrics) in ``params.yaml``, the small tables and
``plots/<app>/*.png``; writes ``reports/report.md`` and the same as one self-contained page,
``reports/index.html`` (:mod:`cnnrnn.report_page`), which leads with the CNN-vs-RNN comparison.
No Lightning, no MLflow: it runs in a second.
"""

from __future__ import annotations

import json
import operator
from pathlib import Path

from cnnrnn.atomic import write_text_atomically
from cnnrnn.config import load_params
from cnnrnn.errors import UserError
from cnnrnn.registry import APPLICATIONS
from cnnrnn.report_page import write_page

TABLES = ("per_class.csv", "models.csv", "context_curve.csv", "ngram_grid.csv", "suggestions.csv", "per_image.csv")  # shown as tables when present
COMPARISONS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


def meets_bar(value: float, bar: str) -> bool:
    """``bar`` is written like ``">= 0.985"``."""
    sign, _, number = bar.partition(" ")
    if sign not in COMPARISONS:
        raise UserError(f"quality bar {bar!r} must look like '>= 0.985' (one of {', '.join(COMPARISONS)}, a space, a number)")
    return COMPARISONS[sign](value, float(number))


CI_LOW, CI_HIGH = "_ci95_low", "_ci95_high"
LOWER_IS_BETTER = ("perplexity", "loss", "nll")
DIFFERENCE = "_difference"


def validation_twin(key: str, metrics: dict, models: list[str]) -> str | None:
    """The ``val_*`` metric measured by the same code as test metric ``key``, if evaluate wrote one.

    ``test_accuracy`` -> ``val_accuracy``; ``rnn_test_accuracy`` -> ``rnn_val_accuracy``;
    ``map`` -> ``val_map``; ``ngram_top3_accuracy`` -> ``ngram_val_top3_accuracy``.
    """
    prefix = next((f"{m}_" for m in models if key.startswith(f"{m}_")), "")
    rest = key[len(prefix):]
    rest = rest[len("test_"):] if rest.startswith("test_") else rest
    twin = f"{prefix}val_{rest}"
    return twin if twin in metrics and twin != key else None


def format_interval(metrics: dict, key: str) -> str:
    value = metrics[key]
    if f"{key}{CI_LOW}" in metrics:
        return f"{value} [{metrics[key + CI_LOW]}, {metrics[key + CI_HIGH]}]"
    return str(value)


def bar_verdict(metrics: dict, key: str, bar: str) -> str:
    """Met or missed by the measured value; "(the interval reaches across it)" where the 95% interval
    includes values on both sides of the bar."""
    met = meets_bar(metrics[key], bar)
    text = "met" if met else "**missed**"
    if f"{key}{CI_LOW}" in metrics:
        low, high = meets_bar(metrics[key + CI_LOW], bar), meets_bar(metrics[key + CI_HIGH], bar)
        if low != high:
            text += " (the 95% interval reaches across the bar)"
    return text


def comparison_rows(metrics: dict) -> list[str]:
    """One row per paired comparison ``<a>_vs_<b>_<metric>_difference``: the difference, its interval, the
    McNemar p-value where there is one, and the verdict by the one rule (:func:`cnnrnn.intervals.verdict`)."""
    from cnnrnn.intervals import verdict

    rows = []
    for key in metrics:
        if not key.endswith(DIFFERENCE) or f"{key}{CI_LOW}" not in metrics:
            continue
        name = key[: -len(DIFFERENCE)]
        p = metrics.get(f"{name}_mcnemar_p", "")
        p = "< 1e-6" if p == 0 else p  # written rounded to 6 decimals
        low, high = metrics[key + CI_LOW], metrics[key + CI_HIGH]
        if any(word in name for word in LOWER_IS_BETTER):  # a perplexity or loss that falls is the better model
            low, high = -high, -low
        rows.append(f"| {name} | {format_interval(metrics, key)} | {p} | {verdict(low, high)} |")
    return rows


def metric_tables(metrics: dict, bars: dict, notes: dict, models: list[str]) -> list[str]:
    """Headline metrics (validation twin, test with interval, bar), comparisons, then the rest."""
    twins = {k: validation_twin(k, metrics, models) for k in metrics}
    shown_elsewhere = {t for t in twins.values() if t and t not in bars}  # a bar metric keeps its own row
    derived = {k for k in metrics if k.endswith((CI_LOW, CI_HIGH)) or "_vs_" in k}
    headline = [k for k in metrics if k not in derived and k not in shown_elsewhere and not isinstance(metrics[k], dict)
                and (k in bars or twins[k] or f"{k}{CI_LOW}" in metrics)]
    lines = ["| metric | validation | test [95% interval] | bar | measured against the bar | note |",
             "|---|---|---|---|---|---|"]
    for key in headline:
        bar = bars.get(key, "")
        lines.append(f"| {key} | {metrics[twins[key]] if twins[key] else ''} | {format_interval(metrics, key)} | {bar} | "
                     f"{bar_verdict(metrics, key, bar) if bar and metrics[key] is not None else ''} | {notes.get(key, '')} |")
    lines.append("")
    comparisons = comparison_rows(metrics)
    if comparisons:
        lines += ["Paired comparisons on the same test items (a minus b; \"better\" only where the whole 95% "
                  "interval lies above 0, \"within noise\" where it includes 0):", "",
                  "| a vs b, metric | difference [95% interval] | McNemar p | verdict |", "|---|---|---|---|",
                  *comparisons, ""]
    rest = [k for k in metrics if k not in headline and k not in derived and k not in shown_elsewhere
            and not isinstance(metrics[k], dict)]
    if rest:
        lines += ["| other measurements | value | note |", "|---|---|---|"]
        lines += [f"| {k} | {metrics[k]} | {notes.get(k, '')} |" for k in rest]
        lines.append("")
    for key, value in metrics.items():
        if isinstance(value, dict):
            lines += [f"{key}: " + ", ".join(f"{k} {v}" for k, v in value.items()), ""]
    return lines


def write_report(root: Path) -> Path:
    import pandas as pd

    params = load_params(root)

    lines = ["# cnnrnn report", "",
             "Measured by `dvc repro` on held-out data; regenerate with `dvc repro report`. Validation figures chose "
             "the defaults; test figures only report. Intervals are 95% bootstrap intervals over test items.", ""]
    for app in APPLICATIONS:
        path = root / "metrics" / f"{app}.json"
        if not path.is_file():
            continue
        metrics = json.loads(path.read_text())
        section = params.get(app, {})
        evaluate_cfg = section.get("evaluate", {})
        bars, notes = evaluate_cfg.get("quality_bars", {}), dict(evaluate_cfg.get("notes", {}))
        for key, figure in (evaluate_cfg.get("before") or {}).items():  # the figure before a change of split
            notes[key] = f"{notes[key]}; before: {figure}" if notes.get(key) else f"before: {figure}"
        models = [*(section.get("models") or {}), *APPLICATIONS[app].metric_prefixes]
        lines += [f"## {app}", "", *metric_tables(metrics, bars, notes, models)]
        for name in TABLES:
            table_path = root / "plots" / app / name
            if table_path.is_file():
                table = pd.read_csv(table_path, dtype=str, keep_default_na=False)  # as written: no NaN, no float widening
                lines += [f"{name}:", "", "| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
                lines += ["| " + " | ".join(str(v).replace("|", "/") for v in row) + " |"
                          for row in table.itertuples(index=False)]
                lines.append("")
        for text in sorted((root / "plots" / app).glob("*.txt")):  # e.g. keyboard's generated sample
            lines += [f"{text.name}:", "", "```", text.read_text().strip(), "```", ""]
        for picture in sorted((root / "plots" / app).glob("*.png")):
            lines += [f"![{picture.stem}](../plots/{app}/{picture.name})", ""]
    text = "\n".join(lines)
    write_page(root, text)
    return write_text_atomically(root / "reports" / "report.md", text)


def baseline_name(baseline: str, headline: str) -> str:
    """The baseline metric's name less the words it shares with the headline's ending:
    ``ngram_test_perplexity`` against ``test_perplexity`` -> ``ngram``."""
    words, head = baseline.split("_"), headline.split("_")
    while len(words) > 1 and head and words[-1] == head[-1]:
        words, head = words[:-1], head[:-1]
    return "_".join(words)


SUMMARY_NAMES_WIDTH = 60  # characters of missed bars' names in a summary line ("+3": three more, in the report)


def named_within(names: list[str], width: int) -> str:
    """``names`` joined by commas as far as ``width`` characters allow (at least one), then "+N" for the N more."""
    shown = names[:1]
    for name in names[1:]:
        if len(", ".join([*shown, name])) > width:
            break
        shown.append(name)
    rest = len(names) - len(shown)
    return ", ".join(shown) + (f" +{rest}" if rest else "")


def summary_rows(root: Path) -> list[dict[str, str]]:
    """One row per application with metrics: its headline metric with the 95% interval, the figure committed before
    a change of data or split (``<app>.evaluate.before``, where there was one), its baseline measured by the same
    code, the headline's bar, and how many of all its bars were met (naming the others missed)."""
    params = load_params(root)
    rows = []
    for app, entry in APPLICATIONS.items():
        path = root / "metrics" / f"{app}.json"
        if not path.is_file():
            rows.append({"application": app, "headline": "not measured yet", "measured [95% interval]": "",
                         "before": "", "baseline": "", "bar": "", "bars met": f"run `dvc repro {app}_evaluate`"})
            continue
        metrics = json.loads(path.read_text())
        bars = params.get(app, {}).get("evaluate", {}).get("quality_bars", {})
        head = entry.headline
        verdicts = {key: meets_bar(metrics[key], bar) for key, bar in bars.items() if metrics.get(key) is not None}
        missed = [key for key, met in verdicts.items() if not met]
        others = [key for key in missed if key != head]  # the headline's own verdict is in the "bar" column
        # names where they fit the width; where even the first does not, the count (the report names them)
        named = (named_within(others, SUMMARY_NAMES_WIDTH) if others and len(others[0]) <= SUMMARY_NAMES_WIDTH
                 else f"{len(others)} more (see the report)")
        bars_met = f"{len(verdicts) - len(missed)} of {len(verdicts)}" + (
            f"; {'also ' if head in missed else ''}missed {named}" if others else "")
        bar = bars.get(head, "")
        before = params.get(app, {}).get("evaluate", {}).get("before") or {}
        rows.append({
            "application": app,
            "headline": head,
            "measured [95% interval]": format_interval(metrics, head) if head in metrics else "missing",
            "before": str(before.get(head, "")).split(" (")[0],  # the figure; why it moved is in the report's notes
            "baseline": f"{baseline_name(entry.baseline, head)} {format_interval(metrics, entry.baseline)}"
                        if entry.baseline in metrics else "none",
            "bar": f"{bar} {'met' if verdicts.get(head) else 'missed'}" if bar and head in verdicts else "",
            "bars met": bars_met,
        })
    return rows


def summary_text(root: Path) -> str:
    """:func:`summary_rows` as aligned columns, one line per application."""
    rows = summary_rows(root)
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns).rstrip()]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns).rstrip() for r in rows]
    return "\n".join(lines)
