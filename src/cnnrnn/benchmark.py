"""Benchmarks (``cnnrnn bench``), kept out of the test suite because they take minutes.

``speed``: images/second of the Lightning training loop against a plain PyTorch loop on the
same network, data, batch size, augmentation, optimizer and schedule (target ratio >= 0.95).
``quality``: the whole pipeline (fetch -> prepare -> train -> evaluate) in a scratch copy of
the project with Hydra overrides, e.g. full Fashion-MNIST; prints the metrics.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from cnnrnn.config import compose, project_root, write_params
from cnnrnn.errors import UserError


def _scratch_project(overrides: list[str]) -> Path:
    root = project_root()
    scratch = Path(tempfile.mkdtemp(prefix="cnnrnn-bench-"))
    shutil.copytree(root / "conf", scratch / "conf")
    shutil.copy2(root / "dvc.yaml", scratch / "dvc.yaml")
    write_params(compose(overrides, scratch), scratch)
    return scratch


def quality(app: str, overrides: list[str]) -> dict[str, Any]:
    from cnnrnn import stages

    scratch = _scratch_project(overrides)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{scratch / 'mlflow.db'}"
    timings = {}
    for stage in ("fetch", "prepare", "train", "evaluate"):
        start = time.perf_counter()
        result = getattr(stages, stage)(app, scratch)
        timings[f"{stage}_seconds"] = round(time.perf_counter() - start, 1)
    return {"app": app, "overrides": overrides, "scratch_dir": str(scratch), "metrics": result, **timings}


def speed(app: str, overrides: list[str], epochs: int, repeats: int = 2) -> dict[str, Any]:
    if app != "classify":
        raise UserError(f"the speed benchmark knows classify only so far, not {app}")
    import pytorch_lightning as pl
    import torch
    import torch.nn.functional as F

    from cnnrnn import stages
    from cnnrnn.classify.model import make_datamodule, make_module
    from cnnrnn.training import make_trainer

    scratch = _scratch_project(overrides)
    stages.fetch(app, scratch)
    stages.prepare(app, scratch)
    params = stages.app_params(app, scratch)
    params["train"]["max_epochs"] = epochs
    prepared = stages.AppPaths(scratch, app).prepared

    def fresh():
        pl.seed_everything(params["seed"], verbose=False)
        dm = make_datamodule(params, prepared)
        dm.setup("fit")
        return dm, make_module(params, dm)

    from cnnrnn.classify.datamodule import random_shift

    cfg = params["train"]

    def plain_loop(n_epochs: int) -> float:
        """The same pieces as the LightningModule, by hand; returns the seconds of the epochs."""
        dm, module = fresh()
        loader = dm.train_dataloader()
        optimizer = torch.optim.AdamW(module.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg["lr"], total_steps=n_epochs * len(loader),
                                                       pct_start=cfg["warmup_fraction"])
        start = time.perf_counter()
        module.train()
        for _ in range(n_epochs):
            for x, y in loader:
                x = random_shift(x.float().div_(255), cfg["augmentation"]["max_shift"])
                loss = F.cross_entropy(module.network(x), y, label_smoothing=cfg["label_smoothing"])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
        return time.perf_counter() - start

    class EpochTimer(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            self.start = getattr(self, "start", None) or time.perf_counter()

        def on_train_end(self, trainer, pl_module):
            self.seconds = time.perf_counter() - self.start

    def lightning_loop() -> float:
        """The same Trainer the train stage builds, timed from the first epoch to the end of training."""
        dm, module = fresh()
        timer = EpochTimer()
        trainer = make_trainer(cfg, scratch / "models", [timer], limit_val_batches=0, enable_progress_bar=False,
                               enable_checkpointing=False)
        trainer.fit(module, datamodule=dm)
        return timer.seconds

    plain_loop(1)  # warm-up: thread pools and allocator, so neither timed loop pays for them
    # Interleaved repeats, best of each: a background hiccup on a 2-core machine hits one run, not the verdict.
    lightning_seconds, plain_seconds = float("inf"), float("inf")
    for _ in range(repeats):
        lightning_seconds = min(lightning_seconds, lightning_loop())
        plain_seconds = min(plain_seconds, plain_loop(epochs))
    images = epochs * len(fresh()[0].datasets["train"])
    shutil.rmtree(scratch, ignore_errors=True)
    return {"app": app, "epochs": epochs, "repeats": repeats, "images": images, "threads": torch.get_num_threads(),
            "lightning_images_per_second": round(images / lightning_seconds, 1),
            "plain_images_per_second": round(images / plain_seconds, 1),
            "lightning_to_plain_ratio": round(plain_seconds / lightning_seconds, 3), "target_ratio": 0.95}


def run_benchmark(kind: str, app: str, overrides: list[str], epochs: int = 3) -> dict[str, Any]:
    return speed(app, overrides, epochs) if kind == "speed" else quality(app, overrides)
