"""The localize ``LightningDataModule``: prepared tensors in memory; batches of (images, boxes, labels)."""

from __future__ import annotations

import json
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset


def load_split(prepared: Path, split: str) -> TensorDataset:
    """``{split}.pt`` as (uint8 image (C, S, S), box [x, y, w, h] in input pixels, label)."""
    t = torch.load(prepared / f"{split}.pt")
    return TensorDataset(t["images"], t["boxes"], t["labels"])


class LocalizationDataModule(pl.LightningDataModule):
    def __init__(self, prepared: Path, batch_size: int, num_workers: int):
        super().__init__()
        self.prepared = Path(prepared)
        self.batch_size = batch_size
        self.num_workers = num_workers
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
        return images.float().div_(255), boxes, labels
