"""The sentiment ``LightningModule`` (one for all four networks) and the training stage's hooks.

The train stage runs once per entry of ``sentiment.models`` (``bow``, ``window``, ``cnn``, ``rnn``);
each run sees ``params['model']`` = that entry and ``params['train']`` = ``sentiment.train`` with the
entry's own ``train`` settings on top. A model with ``train_on_order_sentences: false`` trains on the
real snippets only (the generated order sentences are pure label noise to a bag of words: both
sentences of a pair have the same words and opposite labels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from cnnrnn.model_file import write_model_file
from cnnrnn.optimization import adamw_one_cycle
from cnnrnn.sentiment.datamodule import SentenceDataModule
from cnnrnn.sentiment.network import build_network
from cnnrnn.text import Vocabulary


class SentimentClassifier(pl.LightningModule):
    """Binary cross-entropy on one logit per sentence. Batches: (ids (B, T), lengths (B,), labels (B,))."""

    def __init__(self, model_cfg: dict, train_cfg: dict, vocabulary_size: int):
        super().__init__()
        self.save_hyperparameters()
        self.network = build_network(model_cfg, vocabulary_size)
        self.train_cfg = train_cfg

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.network(ids, lengths)

    def training_step(self, batch, batch_idx):
        ids, lengths, labels = batch
        loss = F.binary_cross_entropy_with_logits(self(ids, lengths), labels.float())
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx):
        ids, lengths, labels = batch
        logits = self(ids, lengths)
        self.log("val_loss", F.binary_cross_entropy_with_logits(logits, labels.float()), on_epoch=True,
                 prog_bar=True, sync_dist=True)
        self.log("val_accuracy", ((logits > 0).long() == labels).float().mean(), on_epoch=True, prog_bar=True,
                 sync_dist=True)

    def configure_optimizers(self):
        return adamw_one_cycle(self, self.train_cfg)


def make_datamodule(params: dict[str, Any], prepared: Path) -> SentenceDataModule:
    return SentenceDataModule(prepared, params["train"]["batch_size"], params["train"]["num_workers"],
                              params["model"]["train_on_order_sentences"])


def make_module(params: dict[str, Any], datamodule: SentenceDataModule) -> SentimentClassifier:
    module = SentimentClassifier(params["model"], params["train"], datamodule.info["vocabulary_size"])
    lexicon = torch.load(datamodule.prepared / "lexicon.pt")
    for name, buffer in module.network.named_buffers():  # the lexicon ratings of the vocabulary, saved with the weights
        if name.split(".")[-1] == "lexicon":
            buffer.copy_(lexicon)
    return module


def save_model(module: SentimentClassifier, model_dir: Path, datamodule: SentenceDataModule,
               params: dict[str, Any]) -> Path:
    """``model.pt`` (weights, config, vocabulary) and ``vocab.json`` beside it."""
    vocab = Vocabulary.load(datamodule.prepared / "vocab.json")
    vocab.save(model_dir / "vocab.json")
    return write_model_file(model_dir / "model.pt", {
        "app": "sentiment", "model_name": params["model_key"], "model_cfg": dict(module.hparams.model_cfg),
        "vocabulary": vocab.tokens, "state_dict": module.network.state_dict()})
