"""The sentiment ``LightningDataModule``: whole sentences of different lengths, never truncated."""

from __future__ import annotations

import json
from pathlib import Path

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from cnnrnn.sentiment.sentences import EncodedSentences, collate_sentences


class SentenceDataModule(pl.LightningDataModule):
    def __init__(self, prepared: Path, batch_size: int, num_workers: int = 0, train_on_order_sentences: bool = True):
        super().__init__()
        self.train_on_order_sentences = train_on_order_sentences
        self.prepared = Path(prepared)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.info = json.loads((self.prepared / "info.json").read_text())
        self.datasets: dict[str, EncodedSentences] = {}

    def setup(self, stage: str | None = None) -> None:
        self.datasets.setdefault("train", EncodedSentences(self.prepared / "train.pt", self.train_on_order_sentences))
        for split in ("val", "test"):
            self.datasets.setdefault(split, EncodedSentences(self.prepared / f"{split}.pt"))

    def loader(self, split: str, shuffle: bool = False) -> DataLoader:
        return DataLoader(self.datasets[split], batch_size=self.batch_size, shuffle=shuffle, collate_fn=collate_sentences,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.loader("test")
