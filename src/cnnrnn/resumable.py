"""Training that survives a kill: an epoch-end checkpoint outside DVC's outputs, resumed by the next run.

DVC deletes a stage's outputs (``models/<app>/``) before it reruns the stage, so the checkpoints live
in the git-ignored ``.cache/checkpoints/<stage>/<key>/``. ``<key>`` is a hash of everything that
decides the result: the values of the stage's ``params`` in ``params.yaml`` (the seed among them)
and the content of its ``deps`` (the prepared data and the code), exactly as ``dvc.yaml`` lists them.
A changed param or changed code therefore never resumes a stale checkpoint: training starts over,
and says so.

After every epoch :class:`EpochCheckpoint` writes ``last.ckpt`` (temp file, then rename): the weights,
the optimizer and scheduler states, Lightning's loop counters, the random generators' states (torch,
NumPy, Python) and the per-epoch curves so far. Data order comes from the global torch generator
(every data module draws its shuffles and crops from it), so restoring the generators as the
checkpoint is read (before the next epoch's data iterator draws its shuffle) makes the resumed run
draw what the uninterrupted run would have drawn: the final weights and metrics are identical. The keyboard models' carried recurrent state is reset at each epoch's start,
so an epoch-end checkpoint needs none. (DataLoader worker processes that persist across epochs would
keep generators a checkpoint cannot see: every default uses ``num_workers: 0``.)

``.cache/checkpoints/<stage>/<key>/run.json`` names the MLflow run that writes the checkpoints, so
the next start can mark it ``KILLED`` (see :mod:`cnnrnn.tracking`) and link the resumed run to it.
The folder is removed once the stage has finished and its outputs are in place.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Checkpoint

from cnnrnn.atomic import kill_point
from cnnrnn.errors import UserError

CHECKPOINTS = Path(".cache") / "checkpoints"


def stage_name(app: str, model: str | None = None) -> str:
    """The DVC stage that trains ``app`` (``<app>_train``, or ``<app>_train@<model>`` for one of several models)."""
    return f"{app}_train@{model}" if model else f"{app}_train"


def stage_inputs(app: str, root: Path, model: str | None = None) -> tuple[list[str], dict[str, Any]]:
    """The train stage's ``deps`` (paths) and its ``params`` with their values, as ``dvc.yaml`` declares them."""
    from cnnrnn.config import load_params
    from cnnrnn.pipeline import app_stages
    from cnnrnn.registry import APPLICATIONS

    params = load_params(root)
    stage = app_stages(APPLICATIONS[app], params, root)[f"{app}_train"]
    if "foreach" in stage:
        stage = json.loads(json.dumps(stage["do"]).replace("${key}", model or ""))
    values = {}
    for key in stage["params"]:
        value: Any = params
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        values[key] = value
    return list(stage["deps"]), values


def content_digest(path: Path) -> str:
    """sha256 of a file, or of a folder's files (their relative paths and contents, in sorted order)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode() if file != path else b"")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def checkpoint_key(app: str, root: Path, model: str | None = None) -> str:
    """A hash of the train stage's params (their values) and the content of its deps: what decides the result."""
    deps, params = stage_inputs(app, root, model)
    missing = [d for d in deps if not (root / d).exists()]
    if missing:
        raise UserError(f"{stage_name(app, model)} needs {', '.join(missing)}; run the stages before it first")
    record = {"stage": stage_name(app, model), "params": params,
              "deps": {d: content_digest(root / d) for d in deps}}
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:20]


class TrainingCheckpoints:
    """The checkpoint folder of one train stage for its current inputs; locked while a training uses it."""

    def __init__(self, app: str, root: Path, model: str | None = None):
        from cnnrnn.tracking import is_rank_zero

        self.stage = stage_name(app, model)
        self.key = checkpoint_key(app, root, model)
        self.stage_dir = Path(root) / CHECKPOINTS / self.stage
        self.directory = self.stage_dir / self.key
        self.rank_zero = is_rank_zero()  # the one process of a distributed run that manages the folder
        self._lock = None
        if not self.rank_zero:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = (self.stage_dir.parent / f"{self.stage}.lock").open("a")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise UserError(f"another process is training {self.stage} in this project right now; wait for it to finish") from None

    @property
    def checkpoint(self) -> Path:
        return self.directory / "last.ckpt"

    @property
    def run_record(self) -> Path:
        return self.directory / "run.json"

    def resumable(self) -> tuple[Path, int] | None:
        """The checkpoint to resume from and the epochs it completed; None if there is none or it cannot be read
        (then it is removed, and training starts over)."""
        if not self.checkpoint.is_file():
            return None
        try:
            state = torch.load(self.checkpoint, map_location="cpu", weights_only=False, mmap=True)
            return self.checkpoint, int(state["epoch"]) + 1
        except Exception as err:  # truncated by a power loss, or not a checkpoint at all
            if self.rank_zero:
                say(f"{self.stage}: the checkpoint {self.checkpoint} cannot be read ({type(err).__name__}); training starts over")
                self.checkpoint.unlink(missing_ok=True)
            return None

    def stale(self) -> list[Path]:
        """Checkpoint folders of this stage made from other params or other code: they never resume."""
        if not self.rank_zero or not self.stage_dir.is_dir():
            return []
        return sorted(p for p in self.stage_dir.iterdir() if p.is_dir() and p != self.directory)

    def finish(self) -> None:
        """The stage finished and its outputs are in place: the checkpoints go."""
        if not self.rank_zero:
            return
        shutil.rmtree(self.directory, ignore_errors=True)
        if self.stage_dir.is_dir() and not any(self.stage_dir.iterdir()):
            self.stage_dir.rmdir()

    def release(self) -> None:
        if self._lock is not None and not self._lock.closed:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()


def say(message: str) -> None:
    print(f"cnnrnn: {message}", file=sys.stderr, flush=True)


def rng_states() -> dict[str, Any]:
    """The global generators' states, in types ``torch.load(weights_only=True)`` reads back."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    states = {"torch": torch.get_rng_state(), "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
              "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        # this process's own device: under DDP every rank seeds and advances its device's generator alike
        states["cuda"] = torch.cuda.get_rng_state()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, position, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state(states["cuda"])


class EpochCheckpoint(Checkpoint):
    """Writes ``path`` at the end of every training epoch (after validation), then calls ``after_save``.

    Lightning runs checkpoint callbacks after the others, so the epoch's curves row is in the checkpoint.
    ``$CNNRNN_TEST_KILL_AT=train:epoch:<N>`` kills the process right after epoch N is saved (tests only).
    """

    def __init__(self, path: Path, after_save=None):
        self.path = Path(path)
        self.after_save = after_save
        self.seconds_before = 0.0  # training time of the epochs an earlier, killed attempt completed
        self.started = time.perf_counter()

    def seconds(self) -> float:
        """Training time of the completed epochs so far, over every attempt."""
        return self.seconds_before + time.perf_counter() - self.started

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_states(), "seconds": self.seconds()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Restored as soon as Lightning reads the checkpoint: a resumed fit creates the next epoch's data
        # iterator (which draws the shuffle) before any later hook runs.
        set_rng_states(state_dict["rng"])
        self.seconds_before = float(state_dict.get("seconds", 0.0))

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.started = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        trainer.save_checkpoint(tmp)
        if trainer.is_global_zero:
            with tmp.open("rb") as handle:  # on disk before it replaces the last good one
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        trainer.strategy.barrier("epoch_checkpoint")
        if self.after_save is not None:
            self.after_save()
        kill_point(f"train:epoch:{trainer.current_epoch + 1}")
