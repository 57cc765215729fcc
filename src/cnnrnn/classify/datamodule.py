"""The classify ``LightningDataModule``: prepared tensors in memory, augmentation on whole batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from cnnrnn.tensor_datamodule import TensorSplitsDataModule




def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Move each image (B, C, H, W) by its own random whole-pixel offset in [-max_shift, max_shift], zero-filled."""
    if max_shift <= 0:
        return images
    b, c, h, w = images.shape
    padded = F.pad(images, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator, device=images.device)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator, device=images.device)
    rows = (torch.arange(h, device=images.device)[None, :] + dy[:, None])[:, None, :, None]  # (B, 1, H, 1)
    cols = (torch.arange(w, device=images.device)[None, :] + dx[:, None])[:, None, None, :]  # (B, 1, 1, W)
    batch = torch.arange(b, device=images.device)[:, None, None, None]
    chans = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, chans, rows, cols]


def random_hflip(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    flip = torch.rand(images.shape[0], generator=generator, device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


class ImageDataModule(TensorSplitsDataModule):
    """Batches of (float images in [0, 1] (B, C, H, W), labels (B,)) from ``data/<app>/prepared``.

    Augmentation (``train.augmentation``) runs on the whole batch after it reaches the device,
    and only while training.
    """

    fields = ("images", "labels")

    def __init__(self, prepared: Path, batch_size: int, num_workers: int, augmentation: dict[str, Any]):
        super().__init__(prepared, batch_size, num_workers)
        self.augmentation = augmentation

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, labels = batch
        images = images.float().div_(255)
        if self.trainer is not None and self.trainer.training:
            images = random_shift(images, int(self.augmentation["max_shift"]))
            if self.augmentation["horizontal_flip"]:
                images = random_hflip(images)
        return images, labels
