"""The translate ``LightningModule`` (teacher-forced cross-entropy) and the training stage's hooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from cnnrnn.model_file import write_model_file
from cnnrnn.optimization import adamw_one_cycle
from cnnrnn.translate.datamodule import PairDataModule
from cnnrnn.translate.network import Seq2Seq
from cnnrnn.translate.tokens import PAD


class Translator(pl.LightningModule):
    """Batches: (source (B, S), lengths (B,), target in (B, T), target out (B, T))."""

    def __init__(self, model_cfg: dict, train_cfg: dict, vocabulary_size: int):
        super().__init__()
        self.save_hyperparameters()
        self.network = Seq2Seq(model_cfg, vocabulary_size)
        self.train_cfg = train_cfg

    def losses(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        source, lengths, target_in, target_out = batch
        logits = self.network(source, lengths, target_in)  # (B, T, V)
        loss = F.cross_entropy(logits.transpose(1, 2), target_out, ignore_index=PAD,
                               label_smoothing=self.train_cfg["label_smoothing"])
        real = target_out != PAD
        accuracy = ((logits.argmax(2) == target_out) & real).sum() / real.sum()
        return loss, accuracy

    def training_step(self, batch, batch_idx):
        loss, _ = self.losses(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, accuracy = self.losses(batch)
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("val_token_accuracy", accuracy, on_epoch=True, prog_bar=True, sync_dist=True)

    def configure_optimizers(self):
        return adamw_one_cycle(self, self.train_cfg)


def make_datamodule(params: dict[str, Any], prepared: Path) -> PairDataModule:
    return PairDataModule(prepared, params["train"]["batch_size"], params["model"]["max_tokens"],
                          params["train"]["num_workers"])


def make_module(params: dict[str, Any], datamodule: PairDataModule) -> Translator:
    return Translator(params["model"], params["train"], datamodule.info["vocabulary_size"])


def save_model(module: Translator, model_dir: Path, datamodule: PairDataModule, params: dict[str, Any]) -> Path:
    """``model.pt``: weights, model config with how to decode (``translate.predict``), tokenizer (plain values) and
    the data it was trained on."""
    tokenizer = torch.load(datamodule.prepared / "tokenizer.pt")
    info = datamodule.info
    return write_model_file(model_dir / "model.pt", {
        "app": "translate", "tokenizer": tokenizer,
        "model_cfg": {**module.hparams.model_cfg, "beam_width": params["predict"]["beam_width"],
                      "length_penalty": params["predict"]["length_penalty"]},
        "vocabulary_size": info["vocabulary_size"], "dataset": info["dataset"], "target": info["target"],
        "state_dict": module.network.state_dict()})
