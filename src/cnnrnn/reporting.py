"""The ``report`` stage: every application's metrics and pictures on one Markdown page.

Reads ``metrics/*.json``, the quality bars of ``<app>.evaluate.quality_bars`` (and the
``<app>.evaluate.notes`` shown beside metrics) in ``params.yaml``, the small tables and
``plots/<app>/*.png``; writes ``reports/report.md``.
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

TABLES = ("per_class.csv", "models.csv", "context_curve.csv", "suggestions.csv")  # shown as tables when present
COMPARISONS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


def meets_bar(value: float, bar: str) -> bool:
    """``bar`` is written like ``">= 0.985"``."""
    sign, _, number = bar.partition(" ")
    if sign not in COMPARISONS:
        raise UserError(f"quality bar {bar!r} must look like '>= 0.985' (one of {', '.join(COMPARISONS)}, a space, a number)")
    return COMPARISONS[sign](value, float(number))


def write_report(root: Path) -> Path:
    import pandas as pd

    params = load_params(root)

    lines = ["# cnnrnn report", "", "Measured by `dvc repro` on held-out data; regenerate with `dvc repro report`.", ""]
    for app in APPLICATIONS:
        path = root / "metrics" / f"{app}.json"
        if not path.is_file():
            continue
        metrics = json.loads(path.read_text())
        evaluate_cfg = params.get(app, {}).get("evaluate", {})
        bars, notes = evaluate_cfg.get("quality_bars", {}), evaluate_cfg.get("notes", {})
        lines += [f"## {app}", "", "| metric | value | bar | note |", "|---|---|---|---|"]
        for key, value in metrics.items():
            bar = bars.get(key)
            verdict = f"{bar} {'✅' if meets_bar(value, bar) else '❌'}" if bar and value is not None else bar or ""
            lines.append(f"| {key} | {value} | {verdict} | {notes.get(key, '')} |")
        lines.append("")
        for name in TABLES:
            table_path = root / "plots" / app / name
            if table_path.is_file():
                table = pd.read_csv(table_path).fillna("")
                lines += [f"{name}:", "", "| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
                lines += ["| " + " | ".join(str(v).replace("|", "/") for v in row) + " |"
                          for row in table.itertuples(index=False)]
                lines.append("")
        for picture in sorted((root / "plots" / app).glob("*.png")):
            lines += [f"![{picture.stem}](../plots/{app}/{picture.name})", ""]
    return write_text_atomically(root / "reports" / "report.md", "\n".join(lines))
