"""Batches of content crops for the style networks: random crops, flips and scales of the training photographs,
their colours varied where ``augment`` is ``colour``.

An epoch is ``crops_per_epoch`` crops drawn with the global (seeded) torch generator. Validation uses
fixed crops of the validation photographs (the same every epoch), so its losses form a curve.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from cnnrnn.stylize.crops import colour_jitter, random_crop


class RandomCrops(Dataset):
    def __init__(self, images: list[torch.Tensor], count: int, side: int, scales: tuple[float, float],
                 augment: str = "none"):
        if augment not in ("none", "colour"):
            from cnnrnn.errors import UserError

            raise UserError(f"stylize.train.augment {augment!r}: choose none or colour")
        self.images, self.count, self.side, self.scales, self.augment = images, count, side, scales, augment

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> torch.Tensor:
        image = self.images[int(torch.randint(len(self.images), ()))]
        crop = random_crop(image, self.side, self.scales)
        return (colour_jitter(crop) if self.augment == "colour" else crop,)


class FixedCrops(Dataset):
    """``per_image`` crops of each photograph, the same every time (their own generator)."""

    def __init__(self, images: list[torch.Tensor], per_image: int, side: int, scales: tuple[float, float], seed: int):
        generator = torch.Generator().manual_seed(seed)
        self.crops = [random_crop(image, side, scales, generator) for image in images for _ in range(per_image)]

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, index: int) -> torch.Tensor:
        return (self.crops[index],)


class ContentCrops(pl.LightningDataModule):
    def __init__(self, prepared: Path, train_cfg: dict, seed: int):
        super().__init__()
        self.prepared = Path(prepared)
        self.cfg = train_cfg
        self.seed = seed
        self.info = json.loads((self.prepared / "info.json").read_text())
        self.splits: dict[str, dict] = {}

    def setup(self, stage: str | None = None) -> None:
        for split in ("train", "val"):
            if split not in self.splits:
                self.splits[split] = torch.load(self.prepared / f"{split}.pt")
        if "styles" not in self.splits:
            self.splits["styles"] = torch.load(self.prepared / "styles.pt")
            self.splits["extra_training"] = torch.load(self.prepared / "extra_training.pt")

    def train_dataloader(self) -> DataLoader:
        cfg = self.cfg
        crops = RandomCrops(self.splits["train"]["images"], cfg["crops_per_epoch"], cfg["crop_side"], tuple(cfg["scales"]),
                            cfg.get("augment", "none"))
        return DataLoader(crops, batch_size=cfg["batch_size"], shuffle=False, num_workers=cfg["num_workers"],
                          persistent_workers=cfg["num_workers"] > 0)

    def val_dataloader(self) -> DataLoader:
        cfg = self.cfg
        crops = FixedCrops(self.splits["val"]["images"], cfg["val_crops_per_image"], cfg["crop_side"], (1.0, 1.0), self.seed)
        return DataLoader(crops, batch_size=cfg["batch_size"], shuffle=False)
