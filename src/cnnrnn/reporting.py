"""The ``report`` stage: every application's metrics and pictures on one Markdown page.

Reads ``metrics/*.json`` and lists ``plots/<app>/*.png``; writes ``reports/report.md``.
No Lightning, no MLflow: it runs in a second.
"""

from __future__ import annotations

import json
from pathlib import Path

from cnnrnn import APPLICATIONS

QUALITY_BARS = {  # the bar each application's issue names, shown next to the measured value
    "classify": {"test_accuracy": (">=", 0.985)},
}


def write_report(root: Path) -> Path:
    import pandas as pd

    lines = ["# cnnrnn report", "", "Measured by `dvc repro` on held-out data; regenerate with `dvc repro report`.", ""]
    for app in APPLICATIONS:
        path = root / "metrics" / f"{app}.json"
        if not path.is_file():
            continue
        metrics = json.loads(path.read_text())
        lines += [f"## {app}", "", "| metric | value | bar |", "|---|---|---|"]
        for key, value in metrics.items():
            bar = QUALITY_BARS.get(app, {}).get(key)
            verdict = ""
            if bar:
                ok = value >= bar[1] if bar[0] == ">=" else value <= bar[1]
                verdict = f"{bar[0]} {bar[1]} {'✅' if ok else '❌'}"
            lines.append(f"| {key} | {value} | {verdict} |")
        lines.append("")
        per_class = root / "plots" / app / "per_class.csv"
        if per_class.is_file():
            table = pd.read_csv(per_class)
            lines += ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
            lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
            lines.append("")
        for picture in sorted((root / "plots" / app).glob("*.png")):
            lines += [f"![{picture.stem}](../plots/{app}/{picture.name})", ""]
    out = root / "reports" / "report.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    return out
