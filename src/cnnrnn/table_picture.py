"""Tables drawn as pictures (for MLflow, ``dvc plots`` and the report), with cells coloured right or wrong."""

from __future__ import annotations

from pathlib import Path

RIGHT, WRONG, PLAIN = "#c8f0c8", "#f5c6c6", "white"


def save_table_picture(cells: list[list[str]], colours: list[list[str]], columns: list[str], widths: list[float],
                       title: str, path: Path, width_inches: float = 11.0) -> Path:
    """Draw ``cells`` (rows of strings) under ``columns``, each cell on its colour, and save a PNG to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width_inches, 0.26 * len(cells) + 0.7))
    ax.axis("off")
    grid = ax.table(cellText=cells, cellColours=colours, colLabels=columns, colWidths=widths, loc="center",
                    cellLoc="left")
    grid.auto_set_font_size(False)
    grid.set_fontsize(8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
