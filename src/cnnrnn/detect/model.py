"""The detect ``LightningModule``: CenterNet's focal heatmap loss + L1 size and offset losses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from cnnrnn.image_models import image_model_record, image_module
from cnnrnn.model_file import write_model_file
from cnnrnn.optimization import adamw_one_cycle
from cnnrnn.detect.datamodule import DetectionDataModule
from cnnrnn.detect.centernet import centernet_loss, centernet_targets
from cnnrnn.detect.network import build_network


class ObjectDetector(pl.LightningModule):
    """Batches (images (B, C, S, S) in [0, 1], boxes (B, M, 4) COCO pixels, labels (B, M), -1 = none)."""

    def __init__(self, model_cfg: dict, train_cfg: dict, classes: list[str], image_shape: list[int],
                 mean: list[float], std: list[float]):
        super().__init__()
        self.save_hyperparameters()
        self.network = build_network(model_cfg, image_shape[0], len(classes), mean, std)
        self.train_cfg = train_cfg

    def forward(self, images):
        return self.network(images)

    def _loss(self, batch):
        images, boxes, labels = batch
        keep = labels >= 0
        targets = centernet_targets([b[k] for b, k in zip(boxes, keep)], [l[k] for l, k in zip(labels, keep)],
                                    len(self.hparams.classes), tuple(images.shape[-2:]), self.network.stride,
                                    self.train_cfg["gaussian_min_overlap"])
        return centernet_loss(self(images), targets, self.train_cfg["size_weight"], self.train_cfg["offset_weight"])

    def training_step(self, batch, batch_idx):
        loss, parts = self._loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, parts = self._loss(batch)
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log_dict({f"val_{k}_loss": v for k, v in parts.items()}, on_epoch=True, sync_dist=True)

    def configure_optimizers(self):
        return adamw_one_cycle(self, self.train_cfg)


def make_datamodule(params: dict[str, Any], prepared: Path) -> DetectionDataModule:
    train = params["train"]
    return DetectionDataModule(prepared, train["batch_size"], train["num_workers"], train["horizontal_flip"])


def make_module(params: dict[str, Any], datamodule: DetectionDataModule) -> ObjectDetector:
    return image_module(ObjectDetector, params, datamodule)


def save_model(module: ObjectDetector, model_dir: Path, datamodule: DetectionDataModule, params: dict[str, Any]) -> Path:
    """Write ``model.pt`` (plain tensors and values; loads without Lightning, with weights_only)."""
    return write_model_file(model_dir / "model.pt", image_model_record("detect", module, params["predict"]))
