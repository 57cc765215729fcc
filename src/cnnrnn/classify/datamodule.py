"""The classify ``LightningDataModule``: prepared tensors in memory, augmentation on whole batches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


def load_split(prepared: Path, split: str) -> TensorDataset:
    """``{split}.pt`` as a dataset of (uint8 image (C, H, W), int64 label)."""
    tensors = torch.load(prepared / f"{split}.pt")
    return TensorDataset(tensors["images"], tensors["labels"])


def channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images (N, C, H, W), in [0, 1] units."""
    x = images.float().div_(255)
    return x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()


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


class ImageDataModule(pl.LightningDataModule):
    """Batches of (float images in [0, 1] (B, C, H, W), labels (B,)) from ``data/<app>/prepared``.

    Augmentation (``train.augmentation``) runs on the whole batch after it reaches the device,
    and only while training.
    """

    def __init__(self, prepared: Path, batch_size: int, num_workers: int, augmentation: dict[str, Any]):
        super().__init__()
        self.prepared = Path(prepared)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.augmentation = augmentation
        self.info = json.loads((self.prepared / "info.json").read_text())
        self.datasets: dict[str, TensorDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        for split in ("train", "val", "test"):
            if split not in self.datasets:
                self.datasets[split] = load_split(self.prepared, split)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(self.datasets[split], batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, labels = batch
        images = images.float().div_(255)
        if self.trainer is not None and self.trainer.training:
            images = random_shift(images, int(self.augmentation["max_shift"]))
            if self.augmentation["horizontal_flip"]:
                images = random_hflip(images)
        return images, labels
