"""Benchmarks (``cnnrnn bench``), kept out of the test suite because they take minutes.

``speed``: images/second of the Lightning training loop against a plain PyTorch loop on the
same network, data, batch size, augmentation, optimizer and schedule (target ratio >= 0.95);
for detect, the CenterNet's training step, forward and targets on random batches shaped like the
configured data (the tests only count its MACs, as CI machines are several times slower).
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
    if app == "detect":
        return detect_speed(overrides, epochs)
    if app != "classify":
        raise UserError(f"the speed benchmark knows classify and detect only so far, not {app}")
    import pytorch_lightning as pl
    import torch
    import torch.nn.functional as F

    from cnnrnn import stages
    from cnnrnn.classify.model import make_datamodule, make_module
    from cnnrnn.paths import AppPaths
    from cnnrnn.training import make_trainer

    scratch = _scratch_project(overrides)
    stages.fetch(app, scratch)
    stages.prepare(app, scratch)
    params = stages.app_params(app, scratch)
    params["train"]["max_epochs"] = epochs
    prepared = AppPaths(scratch, app).prepared

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


def detect_speed(overrides: list[str], epochs: int, batches: int = 10, objects_per_image: int = 8,
                 box_sides: tuple[float, float] = (0.125, 0.45)) -> dict[str, Any]:
    """Speed of the detect network on random batches shaped like the configured data (no data, no Lightning).

    An "epoch" here is ``batches`` batches of ``detect.train.batch_size`` random images of
    ``detect.data`` channels x input_size^2, each with ``objects_per_image`` boxes whose sides are
    ``box_sides`` fractions of the image (digit scenes: 2 to 6 digits of 16 to 48 px in 128 px).
    Each number is the best of ``epochs`` timed epochs after a warm-up one, since other processes
    only ever slow a run down. Reports images/s of a training step without targets (forward, loss,
    backward, AdamW step), images/s of an inference forward, and ms per batch of
    :func:`~cnnrnn.detect.centernet.centernet_targets`.
    """
    import torch

    from cnnrnn.detect.centernet import centernet_loss, centernet_targets
    from cnnrnn.detect.network import build_network

    params = compose(overrides, project_root())["detect"]
    data, train = params["data"], params["train"]
    classes = data.get("classes") or (data.get("subset") or {}).get("categories")
    if not classes:
        raise UserError(f"detect speed benchmark: detect/data={data['name']} does not list its classes; "
                        f"use detect/data=digits_on_textures or coco_subset, or add +detect.data.classes=[a,b,c]")
    channels, size, batch_size = data["channels"], data["input_size"], train["batch_size"]
    generator = torch.Generator().manual_seed(0)
    batch_images = [torch.rand(batch_size, channels, size, size, generator=generator) for _ in range(batches)]
    batch_boxes, batch_labels = [], []
    for _ in range(batches):
        sides = size * (box_sides[0] + (box_sides[1] - box_sides[0]) * torch.rand(
            batch_size, objects_per_image, 2, generator=generator))  # (B, M, 2) w, h
        corners = torch.rand(batch_size, objects_per_image, 2, generator=generator) * (size - sides)
        batch_boxes.append(list(torch.cat([corners, sides], dim=2)))  # B x (M, 4) COCO [x, y, w, h]
        batch_labels.append(list(torch.randint(0, len(classes), (batch_size, objects_per_image), generator=generator)))
    network = build_network(params["model"], channels, len(classes))
    stride = network.stride

    def make_targets(b: int) -> dict[str, torch.Tensor]:
        return centernet_targets(batch_boxes[b], batch_labels[b], len(classes), (size, size), stride,
                                 train["gaussian_min_overlap"])

    targets = [make_targets(b) for b in range(batches)]
    optimizer = torch.optim.AdamW(network.parameters(), lr=train["lr"], weight_decay=train["weight_decay"])

    def train_epoch() -> None:
        network.train()
        for images, target in zip(batch_images, targets):
            loss, _ = centernet_loss(network(images), target, train["size_weight"], train["offset_weight"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    def forward_epoch() -> None:
        network.eval()
        with torch.no_grad():
            for images in batch_images:
                network(images)

    def targets_epoch() -> None:
        for b in range(batches):
            make_targets(b)

    def best_seconds(epoch) -> float:
        epoch()  # warm-up: thread pools and allocator
        times = []
        for _ in range(max(1, epochs)):
            start = time.perf_counter()
            epoch()
            times.append(time.perf_counter() - start)
        return min(times)

    images = batches * batch_size
    return {"app": "detect", "overrides": overrides, "epochs": epochs, "batches_per_epoch": batches,
            "batch_size": batch_size, "image_shape": [channels, size, size], "classes": len(classes),
            "objects_per_image": objects_per_image, "threads": torch.get_num_threads(),
            "train_step_images_per_second": round(images / best_seconds(train_epoch), 1),
            "forward_images_per_second": round(images / best_seconds(forward_epoch), 1),
            "targets_ms_per_batch": round(1e3 * best_seconds(targets_epoch) / batches, 2)}


def run_benchmark(kind: str, app: str, overrides: list[str], epochs: int = 3) -> dict[str, Any]:
    return speed(app, overrides, epochs) if kind == "speed" else quality(app, overrides)
