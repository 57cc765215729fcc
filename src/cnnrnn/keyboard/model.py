"""The keyboard ``LightningModule``: a language model trained by truncated backpropagation through time.

The train stage runs once per entry of ``keyboard.models``: ``word`` (next-word suggestions)
and ``char`` (text generation). The recurrent state is carried from batch to batch (detached,
so gradients stop at the window) and reset at the start of every epoch. Under DDP each rank
carries the state of its own rows, whose windows its loader yields in order (see :mod:`.streams`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from cnnrnn.keyboard.datamodule import TextStreamDataModule
from cnnrnn.keyboard.network import build_network
from cnnrnn.model_file import write_model_file
from cnnrnn.optimization import adamw_one_cycle


def detach(state):
    if state is None:
        return None
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


class LanguageModel(pl.LightningModule):
    """Batches: (inputs (B, T), targets (B, T)) from consecutive windows of the text. Logs nats per token."""

    def __init__(self, model_cfg: dict, train_cfg: dict, vocabulary_size: int):
        super().__init__()
        self.save_hyperparameters()
        self.network = build_network(model_cfg, vocabulary_size)
        self.train_cfg = train_cfg
        self.states = {"train": None, "val": None}

    def on_train_epoch_start(self):
        self.states["train"] = None

    def on_validation_epoch_start(self):
        self.states["val"] = None

    def _step(self, batch, split: str) -> torch.Tensor:
        inputs, targets = batch
        state = self.states[split]
        if state is not None and (state[0] if isinstance(state, tuple) else state).shape[1] != len(inputs):
            state = None
        outputs, state = self.network(inputs, state)
        self.states[split] = detach(state)
        return self.network.loss(outputs, targets)

    def training_step(self, batch, batch_idx):
        loss = self._step(batch, "train")
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        loss = self._step(batch, "val")
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, sync_dist=True, batch_size=batch[1].numel())

    def on_validation_epoch_end(self):
        loss = self.trainer.callback_metrics.get("val_loss")
        if loss is not None:
            self.log("val_perplexity", math.exp(min(float(loss), 50.0)), sync_dist=True)

    def configure_optimizers(self):
        return adamw_one_cycle(self, self.train_cfg)


def make_datamodule(params: dict[str, Any], prepared: Path) -> TextStreamDataModule:
    train = params["train"]
    return TextStreamDataModule(prepared, params["model"]["unit"], train["batch_size"], train["bptt"],
                                train["eval_batch_size"])


def make_module(params: dict[str, Any], datamodule: TextStreamDataModule) -> LanguageModel:
    import json

    vocabulary = json.loads(datamodule.vocabulary_file.read_text())
    return LanguageModel(params["model"], params["train"], len(vocabulary))


def save_model(module: LanguageModel, model_dir: Path, datamodule: TextStreamDataModule, params: dict[str, Any]) -> Path:
    """``model.pt`` (weights, config, vocabulary) and the vocabulary file beside it."""
    import json
    import shutil

    shutil.copy2(datamodule.vocabulary_file, model_dir / datamodule.vocabulary_file.name)
    return write_model_file(model_dir / "model.pt", {
        "app": "keyboard", "model_name": params["model_key"], "model_cfg": dict(module.hparams.model_cfg),
        "unit": datamodule.unit, "punctuation": params["data"]["punctuation"], "vocabulary": json.loads(datamodule.vocabulary_file.read_text()),
        "state_dict": module.network.state_dict()})
