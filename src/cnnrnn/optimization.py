"""The optimizer and schedule every application trains with (keys of ``<app>.train``)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch


def adamw_one_cycle(module: pl.LightningModule, train_cfg: dict) -> dict:
    """AdamW (``lr``, ``weight_decay``) under a one-cycle schedule stepped every batch: warm up for
    ``warmup_fraction`` of the steps, then anneal to ~0 by the last; good accuracy in few epochs."""
    optimizer = torch.optim.AdamW(module.parameters(), lr=train_cfg["lr"], weight_decay=train_cfg["weight_decay"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=train_cfg["lr"],
                                                   total_steps=int(module.trainer.estimated_stepping_batches),
                                                   pct_start=train_cfg["warmup_fraction"])
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
