"""The ``LightningDataModule`` shape every image application shares: prepared tensors in memory.

``prepare`` writes ``data/<app>/prepared/{train,val,test}.pt`` (dicts of tensors); a subclass
names the ``fields`` that make one example and, if it needs to, turns a batch into what its
model takes in ``on_after_batch_transfer``. The training loop never decodes an image file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset


def load_tensor_split(prepared: Path, split: str, fields: tuple[str, ...]) -> TensorDataset:
    tensors = torch.load(Path(prepared) / f"{split}.pt")
    return TensorDataset(*(tensors[name] for name in fields))


class TensorSplitsDataModule(pl.LightningDataModule):
    fields: tuple[str, ...] = ()

    def __init__(self, prepared: Path, batch_size: int, num_workers: int):
        super().__init__()
        self.prepared = Path(prepared)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.info = json.loads((self.prepared / "info.json").read_text())
        self.datasets: dict[str, TensorDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        for split in ("train", "val", "test"):
            if split not in self.datasets:
                self.datasets[split] = load_tensor_split(self.prepared, split, self.fields)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(self.datasets[split], batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
