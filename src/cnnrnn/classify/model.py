"""The classify ``LightningModule`` and the hooks the generic training stage calls.

``make_datamodule``, ``make_module`` and ``save_model`` are the three functions every
application's ``model`` module provides (see :mod:`cnnrnn.training`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from cnnrnn.image_models import image_model_record, image_module
from cnnrnn.model_file import write_model_file
from cnnrnn.optimization import adamw_one_cycle
from cnnrnn.classify.datamodule import ImageDataModule
from cnnrnn.classify.network import build_classifier


class ImageClassifier(pl.LightningModule):
    """Cross-entropy training of :func:`~cnnrnn.classify.network.build_classifier`'s ConvNet.

    Batches: (images (B, C, H, W) floats in [0, 1], labels (B,)). Logs ``train_loss``,
    ``val_loss`` and ``val_accuracy`` per epoch.
    """

    def __init__(self, model_cfg: dict, train_cfg: dict, classes: list[str], image_shape: list[int],
                 mean: list[float], std: list[float]):
        super().__init__()
        self.save_hyperparameters()
        channels, height, _ = image_shape
        self.network = build_classifier(model_cfg, channels, len(classes), height, mean, std)
        self.train_cfg = train_cfg

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images)

    def training_step(self, batch, batch_idx):
        images, labels = batch
        loss = F.cross_entropy(self(images), labels, label_smoothing=self.train_cfg["label_smoothing"])
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        images, labels = batch
        logits = self(images)
        self.log("val_loss", F.cross_entropy(logits, labels), on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("val_accuracy", (logits.argmax(1) == labels).float().mean(), on_epoch=True, prog_bar=True,
                 sync_dist=True)

    def configure_optimizers(self):
        return adamw_one_cycle(self, self.train_cfg)


def make_datamodule(params: dict[str, Any], prepared: Path) -> ImageDataModule:
    train = params["train"]
    return ImageDataModule(prepared, train["batch_size"], train["num_workers"], train["augmentation"])


def make_module(params: dict[str, Any], datamodule: ImageDataModule) -> ImageClassifier:
    return image_module(ImageClassifier, params, datamodule)


def input_style(images: torch.Tensor, predict_cfg: dict) -> tuple[bool, float]:
    """How training images look, so prediction can bring any picture to the same style.

    ``images``: uint8 (N, C, H, W). Returns (light_on_dark, content_fraction): whether the
    border is dark (MNIST style) and the median share of the frame that the object spans
    (about 0.7 for MNIST digits, which sit in a 20x20 box of a 28x28 frame).
    """
    x = images.float() / 255  # (N, C, H, W)
    border = torch.cat([x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], dim=-1).mean()
    light_on_dark = bool(border < predict_cfg["dark_border_below"])
    if not light_on_dark:
        return False, 1.0
    mask = x.amax(1) > predict_cfg["ink_threshold"]  # (N, H, W)
    rows, cols = mask.any(2), mask.any(1)

    def extent(m: torch.Tensor) -> torch.Tensor:
        idx = torch.arange(m.shape[1]).expand_as(m)
        first = torch.where(m, idx, m.shape[1]).amin(1)
        last = torch.where(m, idx, -1).amax(1)
        return (last - first + 1).clamp_min(0)

    span = torch.maximum(extent(rows), extent(cols)).float() / x.shape[-1]
    return True, round(float(span.median()), 3)


def save_model(module: ImageClassifier, model_dir: Path, datamodule: ImageDataModule, params: dict[str, Any]) -> Path:
    """Write ``model.pt``: the plain network's weights and what it takes to rebuild it and feed it.

    Only tensors and plain values, so it loads with ``torch.load(weights_only=True)`` and without Lightning.
    """
    predict_cfg = params["predict"]
    light_on_dark, content_fraction = input_style(datamodule.datasets["train"].tensors[0], predict_cfg)
    style = {**predict_cfg, "light_on_dark": light_on_dark, "content_fraction": content_fraction}
    return write_model_file(model_dir / "model.pt", image_model_record("classify", module, style))
