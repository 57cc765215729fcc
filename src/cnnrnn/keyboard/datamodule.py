"""The keyboard ``LightningDataModule``: word or character streams in contiguous batches (see :mod:`.streams`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from cnnrnn.keyboard.streams import StreamBatches, rank_sampler


class TextStreamDataModule(pl.LightningDataModule):
    """``unit`` "word" reads ``words.pt``, "char" reads ``chars.pt``. Batches are never shuffled: order is the context.

    ``batch_size`` and ``eval_batch_size`` are rows per process. Under DDP (``trainer.world_size`` > 1) each rank
    reads its own contiguous share of the train and of the val stream, window after window (see :mod:`.streams`);
    the val loss is then the token-weighted mean over all ranks (``sync_dist``).
    """

    def __init__(self, prepared: Path, unit: str, batch_size: int, bptt: int, eval_batch_size: int):
        super().__init__()
        if unit not in ("word", "char"):
            raise ValueError(f"keyboard model unit must be word or char, not {unit!r}")
        self.prepared = Path(prepared)
        self.unit = unit
        self.batch_size, self.bptt, self.eval_batch_size = batch_size, bptt, eval_batch_size
        self.info = json.loads((self.prepared / "info.json").read_text())
        self.streams: dict[str, torch.Tensor] = {}

    @property
    def vocabulary_file(self) -> Path:
        return self.prepared / ("vocab.json" if self.unit == "word" else "chars.json")

    def setup(self, stage: str | None = None) -> None:
        if not self.streams:
            self.streams = torch.load(self.prepared / ("words.pt" if self.unit == "word" else "chars.pt"))

    def _loader(self, split: str, batch_size: int) -> DataLoader:
        ranks, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer is not None else (1, 0)
        batches = StreamBatches(self.streams[split], batch_size, self.bptt, ranks)
        return DataLoader(batches, batch_size=None, shuffle=False, sampler=rank_sampler(batches, rank))

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size)
