"""The compose ``LightningModule``: Bernoulli NLL of every frame given the frames before it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from cnnrnn.compose.datamodule import RollDataModule
from cnnrnn.compose.network import FrameLSTM
from cnnrnn.model_file import write_model_file
from cnnrnn.optimization import adamw_one_cycle


def frame_nll(logits: torch.Tensor, rolls: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed over pitches, per frame: (B, T) nats; and the number of real frames."""
    nll = F.binary_cross_entropy_with_logits(logits, rolls, reduction="none").sum(dim=2)
    return nll * mask, mask.sum()


class Composer(pl.LightningModule):
    """Batches: (rolls (B, T, P), mask (B, T))."""

    def __init__(self, model_cfg: dict, train_cfg: dict, pitches: int):
        super().__init__()
        self.save_hyperparameters()
        self.network = FrameLSTM(model_cfg, pitches)
        self.train_cfg = train_cfg

    def loss(self, batch) -> torch.Tensor:
        rolls, mask = batch
        logits, _ = self.network(rolls)
        nll, frames = frame_nll(logits, rolls, mask)
        return nll.sum() / frames

    def training_step(self, batch, batch_idx):
        loss = self.loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self.loss(batch), on_epoch=True, prog_bar=True, sync_dist=True,
                 batch_size=int(batch[1].sum()))  # frame-weighted: the mean NLL per frame over the split

    def configure_optimizers(self):
        return adamw_one_cycle(self, self.train_cfg)


def make_datamodule(params: dict[str, Any], prepared: Path) -> RollDataModule:
    return RollDataModule(prepared, params["train"]["batch_size"], params["train"]["window"],
                          params["train"]["num_workers"])


def make_module(params: dict[str, Any], datamodule: RollDataModule) -> Composer:
    return Composer(params["model"], params["train"], datamodule.info["pitches"])


def save_model(module: Composer, model_dir: Path, datamodule: RollDataModule, params: dict[str, Any]) -> Path:
    """``model.pt``: weights, config, the roll's pitch range and resolution (to write MIDI back)."""
    info = datamodule.info
    return write_model_file(model_dir / "model.pt", {
        "app": "compose", "model_cfg": dict(module.hparams.model_cfg), "pitches": info["pitches"],
        "pitch_low": info["pitch_low"], "steps_per_quarter": info["steps_per_quarter"],
        "generate": dict(params["generate"]), "state_dict": module.network.state_dict()})
