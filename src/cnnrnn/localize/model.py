"""The localize ``LightningModule``: cross-entropy for the class, L1 (or GIoU + L1) for the box."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch.nn.functional as F

from cnnrnn.image_models import image_model_record, image_module
from cnnrnn.model_file import write_model_file
from cnnrnn.optimization import adamw_one_cycle
from cnnrnn.localize.datamodule import LocalizationDataModule
from cnnrnn.localize.network import Localizer, iou_and_giou, xywh_to_cxcywh


class ObjectLocalizer(pl.LightningModule):
    """Batches (images (B, C, S, S) in [0, 1], boxes (B, 4) COCO pixels, labels (B,))."""

    def __init__(self, model_cfg: dict, train_cfg: dict, classes: list[str], image_shape: list[int],
                 mean: list[float], std: list[float]):
        super().__init__()
        self.save_hyperparameters()
        channels, size, _ = image_shape
        self.size = size
        self.network = Localizer(model_cfg, channels, len(classes), size, mean, std)
        self.train_cfg = train_cfg

    def forward(self, images):
        return self.network(images)

    def _losses(self, batch):
        images, boxes, labels = batch
        logits, predicted = self(images)
        target = xywh_to_cxcywh(boxes, self.size)
        iou, giou = iou_and_giou(predicted, target)
        class_loss = F.cross_entropy(logits, labels)
        box_loss = F.l1_loss(predicted, target, reduction="none").sum(-1).mean()
        if self.train_cfg["box_loss"] == "giou":
            box_loss = box_loss + (1 - giou).mean()
        loss = class_loss + self.train_cfg["box_weight"] * box_loss
        accuracy = (logits.argmax(1) == labels).float().mean()
        return loss, {"class_loss": class_loss, "box_loss": box_loss, "accuracy": accuracy, "iou": iou.mean()}

    def training_step(self, batch, batch_idx):
        loss, parts = self._losses(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, parts = self._losses(batch)
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("val_accuracy", parts["accuracy"], on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("val_iou", parts["iou"], on_epoch=True, prog_bar=True, sync_dist=True)

    def configure_optimizers(self):
        return adamw_one_cycle(self, self.train_cfg)


def make_datamodule(params: dict[str, Any], prepared: Path) -> LocalizationDataModule:
    return LocalizationDataModule(prepared, params["train"]["batch_size"], params["train"]["num_workers"])


def make_module(params: dict[str, Any], datamodule: LocalizationDataModule) -> ObjectLocalizer:
    return image_module(ObjectLocalizer, params, datamodule)


def save_model(module: ObjectLocalizer, model_dir: Path, datamodule: LocalizationDataModule, params: dict[str, Any]) -> Path:
    """Write ``model.pt`` (plain tensors and values; loads without Lightning, with weights_only)."""
    return write_model_file(model_dir / "model.pt", image_model_record("localize", module, params["predict"]))
