"""Shared fixtures: the real project, copied small into tmp_path when a test runs stages."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def copy_project(folder: Path) -> Path:
    """A copy of the project's pipeline files (not data, models or MLflow store) in ``folder``/project."""
    dest = folder / "project"
    dest.mkdir()
    for name in ("dvc.yaml", "params.yaml", "conf", ".dvc", ".dvcignore", ".gitignore", "src"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("cache", "tmp", "config.local", "__pycache__", "*.egg-info"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def command_env(folder: Path) -> dict[str, str]:
    """Environment for running the `cnnrnn` / `dvc` commands of this interpreter's venv, MLflow in ``folder``."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    env.pop("DVC_EXP_NAME", None)
    return env


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    return copy_project(tmp_path)


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return command_env(tmp_path)


GIT = ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci"]


def run_ok(cmd: list[str], cwd: Path, env: dict, expect: int = 0) -> subprocess.CompletedProcess:
    """Run a command (``cnnrnn``, ``dvc``, ``git``) and check its exit status (``expect``, 0 unless said)."""
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == expect, f"{' '.join(map(str, cmd))}: rc {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def commit_all(root: Path, env: dict, message: str = "tiny") -> None:
    """``git init`` (once) and commit everything in ``root``: ``dvc exp run`` and ``git clone`` need a commit."""
    if not (root / ".git").exists():
        run_ok(["git", "init", "-q"], root, env)
    run_ok([*GIT, "add", "-A"], root, env)
    run_ok([*GIT, "commit", "-qm", message], root, env)


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


def linked_root(root: Path, app: str, prepared: Path, model_dir: Path, val_is_test: bool = False):
    """AppPaths of a project in ``root`` whose prepared data and model are links to ``prepared`` and
    ``model_dir`` (nothing of theirs is written); with ``val_is_test`` its validation split is the test split."""
    from cnnrnn.paths import AppPaths

    paths = AppPaths(root, app)
    paths.plots.mkdir(parents=True)
    paths.prepared.mkdir(parents=True)
    for file in prepared.iterdir():
        (paths.prepared / file.name).symlink_to(file)
    if val_is_test:
        for name in ("val.pt", "instances_val.json"):
            if (paths.prepared / name).exists():
                (paths.prepared / name).unlink()
                (paths.prepared / name).symlink_to(prepared / name.replace("val", "test"))
    paths.model_dir.parent.mkdir(parents=True)
    paths.model_dir.symlink_to(model_dir)
    return paths


def trained_briefly(app: str, params: dict, prepared: Path, out: Path, train_batches: int, val_batches: int) -> Path:
    """A model of ``app`` trained for a few batches on real prepared data and saved as the train stage saves it."""
    import importlib

    import pytorch_lightning as pl

    parts = importlib.import_module(f"cnnrnn.{app}.model")
    pl.seed_everything(0, verbose=False)
    dm = parts.make_datamodule(params, prepared)
    dm.setup("fit")
    module = parts.make_module(params, dm)
    pl.Trainer(max_epochs=1, limit_train_batches=train_batches, limit_val_batches=val_batches, logger=False,
               enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False).fit(module, datamodule=dm)
    parts.save_model(module, out, dm, params)
    return out


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


@dataclass(frozen=True)
class TinyPipeline:
    root: Path
    env: dict[str, str]
    output: str  # what the one `dvc repro` printed


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory) -> TinyPipeline:
    """One `dvc repro` of the whole pipeline, every application tiny, in a committed copy of the project.

    Shared by every test that checks a stage's outputs through DVC, so the 37 stages run once per test session. The
    run is committed (dvc.lock with it). Tests read it; one that changes what others read puts it back (the failed
    fetch's params.yaml); test_sharing adds and commits a default remote, which no other test reads.
    """
    from cnnrnn.config import compose, write_params
    from cnnrnn.registry import tiny_overrides

    folder = tmp_path_factory.mktemp("pipeline")
    root, env = copy_project(folder), command_env(folder)
    write_params(compose(tiny_overrides(), root), root)
    commit_all(root, env)
    output = run_ok(["dvc", "repro"], root, env).stdout
    commit_all(root, env, "tiny pipeline, run")
    return TinyPipeline(root, env, output)
