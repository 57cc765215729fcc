"""The detect ``LightningDataModule``: prepared tensors in memory; batches of (images, boxes, labels)."""

from __future__ import annotations

import json
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset


def load_split(prepared: Path, split: str) -> TensorDataset:
    """``{split}.pt`` as (uint8 image (C, S, S), boxes (M, 4) COCO input pixels, labels (M,) with -1 padding)."""
    t = torch.load(prepared / f"{split}.pt")
    return TensorDataset(t["images"], t["boxes"], t["labels"])


class DetectionDataModule(pl.LightningDataModule):
    def __init__(self, prepared: Path, batch_size: int, num_workers: int, horizontal_flip: bool):
        super().__init__()
        self.prepared = Path(prepared)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.horizontal_flip = horizontal_flip
        self.info = json.loads((self.prepared / "info.json").read_text())
        self.datasets: dict[str, TensorDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        for split in ("train", "val", "test"):
            self.datasets.setdefault(split, load_split(self.prepared, split))

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(self.datasets[split], batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, boxes, labels = batch
        images = images.float().div_(255)
        if self.horizontal_flip and self.trainer is not None and self.trainer.training:
            # Mirror half the batch, boxes with it (digits are not mirror-symmetric: off by default).
            flip = torch.rand(images.shape[0], device=images.device) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
            mirrored = boxes.clone()
            mirrored[..., 0] = images.shape[-1] - boxes[..., 0] - boxes[..., 2]
            boxes = torch.where(flip[:, None, None], mirrored, boxes)
        return images, boxes, labels
