"""What the standalone sweep scripts share (they run without Hydra, MLflow or DVC, e.g. on a lent GPU machine):
reading ``KEY=V1,V2`` axes into grid points, and adding rows to a table that keeps earlier rows."""

from __future__ import annotations

import itertools
from pathlib import Path


def value(text: str):
    """``"3"`` -> 3, ``"0.1"`` -> 0.1, anything else stays text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def grid_points(axes: list[str]) -> list[dict]:
    """``["hidden=256,512", "dropout=0.2"]`` -> every combination as ``{key: value}``."""
    parsed = {key: [value(v) for v in values.split(",")] for key, values in (a.split("=", 1) for a in axes)}
    return [dict(zip(parsed, combo)) for combo in itertools.product(*parsed.values())]


def add_rows(table: Path, rows: list[dict]):
    """Append ``rows`` to the CSV ``table`` (earlier rows stay); returns the whole table."""
    import pandas as pd

    whole = pd.concat([pd.read_csv(table) if table.exists() else pd.DataFrame(), pd.DataFrame(rows)], ignore_index=True)
    whole.to_csv(table, index=False)
    return whole
