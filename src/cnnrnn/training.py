"""The generic ``train`` stage: Lightning fits an application's module, MLflow records it.

Each application's ``model`` part (see :mod:`cnnrnn.registry`) provides ``make_datamodule(params, prepared)``,
``make_module(params, datamodule)`` and ``save_model(module, model_dir, datamodule, params)``; the trainer,
checkpoints, seeding, per-epoch curves and MLflow logging are the same for all of them.
"""

from __future__ import annotations

import csv
import io
import json
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
    """Writes each epoch's logged metrics to a CSV (for ``dvc plots``) and to the MLflow run."""

    def __init__(self, csv_path: Path, mlflow=None):
        self.csv_path = Path(csv_path)
        self.mlflow = mlflow
        self.rows: list[dict[str, float]] = []
        self.samples = 0
        self.epoch_start = 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        self.epoch_start = time.perf_counter()
        self.samples = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.samples += len(batch[0]) if isinstance(batch, (list, tuple)) else 0

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        seconds = time.perf_counter() - self.epoch_start
        row = {"epoch": trainer.current_epoch + 1}
        row.update({k: round(float(v), 6) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1})
        row["samples_per_second"] = round(self.samples * trainer.world_size / max(seconds, 1e-9), 1)
        self.rows.append(row)
        fields = list(dict.fromkeys(k for r in self.rows for k in r))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=fields)
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomically(self.csv_path, text.getvalue())
        if self.mlflow is not None:
            self.mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])


def make_trainer(train_cfg: dict[str, Any], model_dir: Path, callbacks: list[pl.Callback], **overrides) -> pl.Trainer:
    """A Trainer from ``<app>.train``: CPU here, GPUs or several machines (DDP) by config."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    if overrides.get("enable_checkpointing", True):
        callbacks = [ModelCheckpoint(dirpath=model_dir / "checkpoints", save_last=True, save_top_k=0), *callbacks]
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
        num_sanity_val_steps=0,
    )
    options.update(overrides)
    return pl.Trainer(**options)


def train(app: str, params: dict[str, Any], paths: AppPaths) -> dict[str, Any]:
    """Fit, save ``models/<app>/model.pt``, log the run and the pyfunc model; return the summary."""
    from cnnrnn.pyfunc import log_model

    parts = application(app).part("model")
    train_cfg = params["train"]
    pl.seed_everything(params["seed"], workers=True, verbose=False)
    datamodule = parts.make_datamodule(params, paths.prepared)
    datamodule.setup("fit")
    module = parts.make_module(params, datamodule)
    info = json.loads((paths.prepared / "info.json").read_text())
    paths.model_dir.mkdir(parents=True, exist_ok=True)
    with tracking.start_run(paths.root, app, "train", params, info) as mlflow:
        curves = EpochCurves(paths.plots / "train_curves.csv", mlflow)
        trainer = make_trainer(train_cfg, paths.model_dir, [curves])
        start = time.perf_counter()
        trainer.fit(module, datamodule=datamodule)
        train_seconds = time.perf_counter() - start
        if not trainer.is_global_zero:
            return {}
        model_path = parts.save_model(module, paths.model_dir, datamodule, params)
        last = curves.rows[-1] if curves.rows else {}
        summary = {"train_seconds": round(train_seconds, 2), "epochs": trainer.current_epoch,
                   "samples_per_second": last.get("samples_per_second"),
                   "final_val_loss": last.get("val_loss"), "final_val_accuracy": last.get("val_accuracy"),
                   "run_id": mlflow.active_run().info.run_id if mlflow else None, "model": str(model_path.relative_to(paths.root)),
                   reproducibility.FINGERPRINT_KEY: reproducibility.fingerprint()}
        write_json_atomically(paths.model_dir / "train_summary.json", summary)
        if mlflow is not None:
            mlflow.log_metric("train_seconds", summary["train_seconds"])
            mlflow.log_artifact(str(paths.plots / "train_curves.csv"))
            log_model(mlflow, app, paths.model_dir)
    return summary
