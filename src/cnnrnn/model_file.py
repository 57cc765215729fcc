"""``model.pt``: what a trained network needs to run again, as tensors and plain values only.

Written with :func:`write_model_file` at the end of training and read with
:func:`read_model_file`, which uses ``torch.load(weights_only=True)``: loading a model file
never runs code, and needs neither Lightning nor MLflow.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch

from cnnrnn.atomic import write_bytes_atomically
from cnnrnn.errors import UserError


def write_model_file(path: Path, payload: dict[str, Any]) -> Path:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return write_bytes_atomically(Path(path), buffer.getvalue())


def read_model_file(path: Path, app: str, retrain: str) -> dict[str, Any]:
    """The saved dict of ``path``; a :class:`UserError` saying to run ``retrain`` if it is missing or not ``app``'s."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no trained model at {path}; run `{retrain}` first")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, ValueError, OSError, pickle.UnpicklingError) as err:
        raise UserError(f"{path} is not a readable model file ({type(err).__name__}: {str(err)[:200]}); "
                        f"run `{retrain}` again") from err
    if not isinstance(saved, dict) or saved.get("app") != app:
        raise UserError(f"{path} is not a cnnrnn {app} model; run `{retrain}` again")
    return saved


def rebuild(path: Path, saved: dict[str, Any], build, retrain: str):
    """``build(saved)`` -> a network with the saved weights loaded; a :class:`UserError` if the file does not fit the code."""
    try:
        network = build(saved)
        network.load_state_dict(saved["state_dict"])
    except (KeyError, RuntimeError, TypeError, ValueError) as err:
        raise UserError(f"{path} does not fit this version of cnnrnn ({type(err).__name__}: {str(err)[:200]}); "
                        f"run `{retrain}` again") from err
    return network.eval()
