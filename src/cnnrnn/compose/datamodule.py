"""The compose ``LightningDataModule``: pieces as random windows of ``window`` frames, padded in a batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset


class PieceWindows(Dataset):
    """``{split}.pt`` of prepare. Training: one random window of at most ``window`` frames per piece and epoch
    (drawn from the global generator, seeded by the train stage); evaluation: whole pieces."""

    def __init__(self, path: Path, window: int | None):
        saved = torch.load(path)
        self.names, self.rolls, self.window = saved["names"], saved["rolls"], window

    def __len__(self) -> int:
        return len(self.rolls)

    def __getitem__(self, index: int) -> torch.Tensor:
        roll = self.rolls[index]
        if self.window and len(roll) > self.window:
            start = int(torch.randint(0, len(roll) - self.window + 1, (1,)))
            roll = roll[start:start + self.window]
        return roll


def collate_rolls(rolls: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """-> rolls (B, T, P) float, zero-padded; mask (B, T) True at real frames."""
    lengths = torch.tensor([len(r) for r in rolls])
    padded = torch.nn.utils.rnn.pad_sequence([r.float() for r in rolls], batch_first=True)
    return padded, torch.arange(padded.size(1))[None] < lengths[:, None]


class RollDataModule(pl.LightningDataModule):
    def __init__(self, prepared: Path, batch_size: int, window: int, num_workers: int = 0):
        super().__init__()
        self.prepared, self.batch_size, self.window, self.num_workers = Path(prepared), batch_size, window, num_workers
        self.info = json.loads((self.prepared / "info.json").read_text())
        self.datasets: dict[str, PieceWindows] = {}

    def setup(self, stage: str | None = None) -> None:
        self.datasets.setdefault("train", PieceWindows(self.prepared / "train.pt", self.window))
        self.datasets.setdefault("val", PieceWindows(self.prepared / "val.pt", None))

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.datasets["train"], batch_size=self.batch_size, shuffle=True, collate_fn=collate_rolls,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.datasets["val"], batch_size=self.batch_size, collate_fn=collate_rolls,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)
