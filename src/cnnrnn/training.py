"""The generic ``train`` stage: Lightning fits an application's module, MLflow records it.

Each application's ``model`` part (see :mod:`cnnrnn.registry`) provides ``make_datamodule(params, prepared)``,
``make_module(params, datamodule)`` and ``save_model(module, model_dir, datamodule, params)``; the trainer,
checkpoints, seeding, per-epoch curves and MLflow logging are the same for all of them.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from cnnrnn import reproducibility, tracking
from cnnrnn.atomic import write_json_atomically, write_text_atomically
from cnnrnn.paths import AppPaths
from cnnrnn.registry import application


class EpochCurves(pl.Callback):
    """Each epoch's logged metrics: a CSV (for ``dvc plots``) rewritten every epoch, and MLflow metrics by epoch.

    The rows are part of the checkpoint, so a resumed run's CSV holds every epoch. :meth:`publish` (called by the
    checkpoint once the epoch is saved) logs to MLflow the epochs after ``logged_through``: a resumed run logs
    from where the run it continues stopped, so the two runs' curves join without a repeated step.
    """

    def __init__(self, csv_path: Path, mlflow=None):
        self.csv_path = Path(csv_path)
        self.mlflow = mlflow
        self.rows: list[dict[str, float]] = []
        self.logged_through = 0
        self.samples = 0
        self.epoch_start = 0.0

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = list(state_dict["rows"])

    def on_train_epoch_start(self, trainer, pl_module):
        self.epoch_start = time.perf_counter()
        self.samples = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.samples += len(batch[0]) if isinstance(batch, (list, tuple)) else 0

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        seconds = time.perf_counter() - self.epoch_start
        metrics = trainer.callback_metrics  # on every process: under DDP, reading them averages across processes
        if not trainer.is_global_zero:
            return
        row = {"epoch": trainer.current_epoch + 1}
        row.update({k: round(float(v), 6) for k, v in metrics.items() if torch.is_tensor(v) and v.numel() == 1})
        row["samples_per_second"] = round(self.samples * trainer.world_size / max(seconds, 1e-9), 1)
        self.rows.append(row)
        self.write_csv()

    def write_csv(self) -> None:
        fields = list(dict.fromkeys(k for r in self.rows for k in r))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=fields)
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomically(self.csv_path, text.getvalue())

    def publish(self) -> None:
        if self.mlflow is None:
            return
        for row in (r for r in self.rows if r["epoch"] > self.logged_through):
            self.mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])
            self.logged_through = row["epoch"]


def make_trainer(train_cfg: dict[str, Any], model_dir: Path, callbacks: list[pl.Callback], **overrides) -> pl.Trainer:
    """A Trainer from ``<app>.train``: CPU here, GPUs or several machines (DDP) by config.

    It checkpoints only through a checkpoint callback given in ``callbacks`` (the train stage's
    :class:`cnnrnn.resumable.EpochCheckpoint`).
    """
    from pytorch_lightning.callbacks import Checkpoint

    options = dict(
        max_epochs=train_cfg["max_epochs"],
        accelerator=train_cfg["accelerator"],
        devices=train_cfg["devices"],
        num_nodes=train_cfg["num_nodes"],
        strategy=train_cfg["strategy"],
        precision=train_cfg["precision"],
        limit_train_batches=train_cfg["limit_train_batches"],
        limit_val_batches=train_cfg["limit_val_batches"],
        deterministic=train_cfg["deterministic"],
        gradient_clip_val=train_cfg["gradient_clip_val"],
        callbacks=callbacks,
        logger=False,
        default_root_dir=str(model_dir),
        enable_model_summary=False,
        enable_checkpointing=any(isinstance(c, Checkpoint) for c in callbacks),
        num_sanity_val_steps=0,
    )
    options.update(overrides)
    return pl.Trainer(**options)


def last_logged_epoch(mlflow, run_id: str | None) -> int:
    """The last epoch whose curves run ``run_id`` logged (0 if none, or if the run cannot be read)."""
    if not run_id:
        return 0
    try:
        history = mlflow.MlflowClient().get_metric_history(run_id, "samples_per_second")
    except Exception:  # a run of another store, or deleted
        return 0
    return max((m.step for m in history), default=0)


def train(app: str, params: dict[str, Any], paths: AppPaths) -> dict[str, Any]:
    """Fit, save ``models/<app>/model.pt``, log the run and the pyfunc model; return the summary.

    Resumes from the stage's checkpoint when an earlier run with the same inputs was killed (see
    :mod:`cnnrnn.resumable`); removes the checkpoint once the model and its summary are in place.
    """
    from cnnrnn.pyfunc import log_model
    from cnnrnn.resumable import EpochCheckpoint, TrainingCheckpoints, say

    parts = application(app).part("model")
    train_cfg = params["train"]
    checkpoints = TrainingCheckpoints(app, paths.root, params.get("model_key"))
    resume_from, done = checkpoints.resumable() or (None, 0)
    if resume_from is not None and checkpoints.rank_zero:
        say(f"{checkpoints.stage}: resuming after epoch {done} of {train_cfg['max_epochs']} from "
            f"{resume_from.relative_to(paths.root)} (same params, data and code)")
    pl.seed_everything(params["seed"], workers=True, verbose=False)
    datamodule = parts.make_datamodule(params, paths.prepared)
    datamodule.setup("fit")
    module = parts.make_module(params, datamodule)
    info = json.loads((paths.prepared / "info.json").read_text())
    paths.model_dir.mkdir(parents=True, exist_ok=True)
    tags = {"cnnrnn.checkpoint_key": checkpoints.key}
    curves = EpochCurves(paths.plots / "train_curves.csv")

    def link_runs(mlflow, previous_run: str | None) -> None:
        """A resumed run names the run it continues, and continues its curves after its last logged epoch."""
        if resume_from is None or not previous_run:
            return
        mlflow.set_tags({"cnnrnn.resumed_from_run": previous_run, "cnnrnn.resumed_after_epoch": str(done)})
        curves.logged_through = last_logged_epoch(mlflow, previous_run)
        try:
            mlflow.MlflowClient().set_tag(previous_run, "cnnrnn.resumed_by_run", mlflow.active_run().info.run_id)
        except Exception:  # the earlier run lives in another store
            pass

    stale = checkpoints.stale()
    for folder in stale:
        say(f"{checkpoints.stage}: the checkpoint in {folder.relative_to(paths.root)} was made with other params, data "
            f"or code and cannot be resumed{'; training starts over' if resume_from is None else ''}")
    try:
        with tracking.start_run(paths.root, app, "train", params, info, tags, owner_file=checkpoints.run_record,
                                on_start=link_runs, close_first=[f / "run.json" for f in stale]) as mlflow:
            for folder in stale:
                shutil.rmtree(folder, ignore_errors=True)
            curves.mlflow = mlflow
            saver = EpochCheckpoint(checkpoints.checkpoint, curves.publish)
            trainer = make_trainer(train_cfg, paths.model_dir, [curves, saver])
            # weights_only=False: the checkpoint is this stage's own file, and some modules' hyperparameters are not plain tensors
            try:
                trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume_from) if resume_from else None,
                            weights_only=False if resume_from else None)
            except SystemExit:
                if trainer.interrupted:  # Lightning turns Ctrl-C into sys.exit(1); the run was interrupted, not failed
                    raise KeyboardInterrupt from None
                raise
            train_seconds = saver.seconds()  # the epochs of every attempt that made this model, not the lost ones
            if not trainer.is_global_zero:
                return {}
            curves.write_csv()  # also when the resumed fit had no epoch left to run (killed while saving the model)
            curves.publish()
            model_path = parts.save_model(module, paths.model_dir, datamodule, params)
            last = curves.rows[-1] if curves.rows else {}
            summary = {"train_seconds": round(train_seconds, 2), "epochs": trainer.current_epoch,
                       "samples_per_second": last.get("samples_per_second"),
                       "final_val_loss": last.get("val_loss"), "final_val_accuracy": last.get("val_accuracy"),
                       "run_id": mlflow.active_run().info.run_id if mlflow else None, "model": str(model_path.relative_to(paths.root)),
                       reproducibility.FINGERPRINT_KEY: reproducibility.fingerprint()}
            if resume_from is not None:
                summary["resumed_after_epoch"] = done
            write_json_atomically(paths.model_dir / "train_summary.json", summary)
            if mlflow is not None:
                mlflow.log_metric("train_seconds", summary["train_seconds"])
                mlflow.log_artifact(str(paths.plots / "train_curves.csv"))
                log_model(mlflow, app, paths.model_dir)
        checkpoints.finish()
    finally:
        checkpoints.release()
    return summary
