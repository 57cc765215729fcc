"""Shared fixtures: the real project, copied small into tmp_path when a test runs stages."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A copy of the project's pipeline files (not data, models or MLflow store) in tmp_path."""
    dest = tmp_path / "project"
    dest.mkdir()
    for name in ("dvc.yaml", "params.yaml", "conf", ".dvc", ".dvcignore", ".gitignore", "src"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("cache", "tmp", "__pycache__", "*.egg-info"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running the `cnnrnn` / `dvc` commands of this interpreter's venv, MLflow in tmp_path."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env.pop("DVC_EXP_NAME", None)
    return env


class QuietFileHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def file_server(tmp_path: Path):
    """A real HTTP server on 127.0.0.1 serving the files of tmp_path/served; yields (folder, base URL)."""
    root = tmp_path / "served"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietFileHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


def fast_dev_run(app: str, params: dict, prepared: Path, model: str) -> None:
    """One batch of training and validation (Lightning's fast_dev_run) of ``<app>.models.<model>`` on real prepared data."""
    import importlib

    from cnnrnn.paths import model_params
    from cnnrnn.training import make_trainer

    parts = importlib.import_module(f"cnnrnn.{app}.model")
    p = model_params(params, model)
    datamodule = parts.make_datamodule(p, prepared)
    datamodule.setup("fit")
    module = parts.make_module(p, datamodule)
    make_trainer(p["train"], prepared.parent / "run", [], fast_dev_run=True, enable_checkpointing=False,
                 enable_progress_bar=False).fit(module, datamodule=datamodule)
