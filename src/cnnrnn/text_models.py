"""What the text applications' prediction shares: finding their trained models, reading strings from MLflow input.

Torch-free and Lightning-free, so ``cnnrnn predict`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

from cnnrnn.errors import UserError


def model_files(model_dir: Path, app: str, names: list[str] | None = None) -> list[Path]:
    """``models/<app>``'s ``<name>/model.pt`` files (every one, or those of ``names``), or ``model_dir/model.pt`` itself."""
    model_dir = Path(model_dir)
    if (model_dir / "model.pt").is_file():
        return [model_dir / "model.pt"]
    files = [model_dir / n / "model.pt" for n in names] if names else sorted(model_dir.glob("*/model.pt"))
    if not files:
        raise UserError(f"no trained {app} model under {model_dir}; run `dvc repro {app}_train` first")
    return files


def text_inputs(frame) -> list:
    """The strings of an MLflow pyfunc input: a DataFrame's ``text`` column (else its first), a list, or one string."""
    import pandas as pd

    if isinstance(frame, str):
        return [frame]
    if not isinstance(frame, pd.DataFrame):
        return list(frame)
    return frame["text" if "text" in frame.columns else frame.columns[0]].tolist()
