"""The stylize ``LightningModule``: one feed-forward style network per configured style, trained together
on the same content crops against a frozen loss network (Johnson et al.'s perceptual losses).

The networks share nothing but the crops: each has its own style target, its own parameters and its
own loss (summed, so one AdamW step is each network's own step). The loss network is built, or fitted
(``patch_cnn``), when the module is made, from the training photographs and the style images only.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from cnnrnn.model_file import write_model_file
from cnnrnn.stylize.datamodule import ContentCrops
from cnnrnn.stylize.features import level_distances
from cnnrnn.stylize.loss_network import build_loss_network, weights_path
from cnnrnn.stylize.network import build_style_network, grey_output_styles
from cnnrnn.stylize.optimize import colour_projections, loss_weights, transfer_losses


class StyleTransfer(pl.LightningModule):
    """Batches: (crops (B, 3, S, S) in [0, 1],)."""

    def __init__(self, model_cfg: dict, train_cfg: dict, loss_cfg: dict, style_names: list[str],
                 style_images: list[torch.Tensor], loss_levels, loss_record: dict):
        super().__init__()
        self.save_hyperparameters(ignore=["style_images", "loss_levels", "loss_record"])
        self.train_cfg = train_cfg
        self.weights = loss_weights(loss_cfg)
        grey_styles = grey_output_styles(model_cfg, style_names, style_images)  # predict derives them again, the same way
        self.networks = nn.ModuleDict({name: build_style_network(model_cfg, name in grey_styles) for name in style_names})
        self.levels = loss_levels
        self.loss_network = loss_levels.network  # a submodule: moves with the module, frozen
        self.loss_record = loss_record
        self.style_images = [image.clone() for image in style_images]
        with torch.no_grad():
            for name, image in zip(style_names, style_images):
                grams, _ = loss_levels(image.float().div(255)[None])
                for level, gram in enumerate(grams):
                    self.register_buffer(f"target_{name}_{level}", gram)
                self.register_buffer(f"colours_{name}", colour_projections(image.float().div(255)), persistent=False)

    def targets(self, name: str) -> list[torch.Tensor]:
        return [getattr(self, f"target_{name}_{level}") for level in range(len(self.levels.style_levels))]

    def forward(self, images: torch.Tensor, style: str) -> torch.Tensor:
        return self.networks[style](images)

    def _losses(self, crops: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            content_grams, content_features = self.levels(crops)
        totals: dict[str, torch.Tensor] = {}
        for name, network in self.networks.items():
            targets = self.targets(name)
            content_distances = level_distances(content_grams, [t.expand_as(g) for t, g in zip(targets, content_grams)])
            losses = transfer_losses(self.levels, network(crops), content_features, content_distances, targets,
                                     self.weights, getattr(self, f"colours_{name}"))
            for key, value in losses.items():
                totals[key] = totals.get(key, 0) + value
                totals[f"{name}_{key}"] = value
        return totals

    def training_step(self, batch, batch_idx):
        losses = self._losses(batch[0])
        n = len(self.networks)
        self.log("train_loss", losses["total"], on_step=False, on_epoch=True, prog_bar=True)
        self.log("train_style_loss", losses["style"] / n, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train_content_loss", losses["content"] / n, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train_colour_loss", losses["colour"] / n, on_step=False, on_epoch=True)
        return losses["total"]

    def validation_step(self, batch, batch_idx):
        losses = self._losses(batch[0])
        n = len(self.networks)
        self.log("val_loss", losses["total"], on_epoch=True, prog_bar=True)
        self.log("val_style_loss", losses["style"] / n, on_epoch=True)
        self.log("val_content_loss", losses["content"] / n, on_epoch=True)
        self.log("val_colour_loss", losses["colour"] / n, on_epoch=True)
        for name in self.networks:
            self.log(f"val_{name}_style_loss", losses[f"{name}_style"], on_epoch=True)
            self.log(f"val_{name}_content_loss", losses[f"{name}_content"], on_epoch=True)

    def configure_optimizers(self):
        return _style_networks_optimizer(self)


def _style_networks_optimizer(module: StyleTransfer) -> dict:
    """AdamW over the style networks only (the loss network stays frozen), one-cycle schedule."""
    cfg = module.train_cfg
    optimizer = torch.optim.AdamW(module.networks.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg["lr"],
                                                   total_steps=int(module.trainer.estimated_stepping_batches),
                                                   pct_start=cfg["warmup_fraction"])
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def loss_network_images(datamodule: ContentCrops) -> list[torch.Tensor]:
    """What the ``patch_cnn`` loss network is fitted on: training photographs, styles and extra textures (floats)."""
    splits = datamodule.splits
    return [image.float().div(255) for key in ("train", "styles", "extra_training") for image in splits[key]["images"]]




def make_datamodule(params: dict[str, Any], prepared: Path) -> ContentCrops:
    return ContentCrops(prepared, params["train"], params["seed"])


TRAINING_LOSS_KEYS = {"gram", "content_weight", "style_weight", "tv_weight", "colour_weight", "style_levels", "content_level",
                      "style_layers", "content_layer", "luminance_only"}


def training_loss_cfg(params: dict[str, Any]) -> dict[str, Any]:
    """``stylize.loss`` with ``stylize.train.loss``'s changes: the feed-forward networks' loss (Gatys' method keeps
    ``stylize.loss``)."""
    changes = {k: v for k, v in (params["train"].get("loss") or {}).items() if v is not None}
    unknown = sorted(set(changes) - TRAINING_LOSS_KEYS)
    if unknown:
        from cnnrnn.errors import UserError

        raise UserError(f"stylize.train.loss.{unknown[0]}: the feed-forward loss may change only "
                        f"{', '.join(sorted(TRAINING_LOSS_KEYS))} (the loss network itself is stylize.loss; luminance_only wraps it)")
    return {**params["loss"], **changes}


def make_module(params: dict[str, Any], datamodule: ContentCrops) -> StyleTransfer:
    datamodule.setup("fit")
    loss_cfg = training_loss_cfg(params)
    print(f"stylize: loss network {loss_cfg['network']}", file=sys.stderr, flush=True)
    levels, record = build_loss_network(loss_cfg, loss_network_images(datamodule), params["seed"],
                                        weights_path(loss_cfg, Path(datamodule.prepared).parent))
    names, images = trained_styles(params["train"], datamodule.splits["styles"])
    return StyleTransfer(params["model"], params["train"], loss_cfg, names, images, levels, record)


def trained_styles(train_cfg: dict[str, Any], styles: dict[str, list]) -> tuple[list[str], list[torch.Tensor]]:
    """The styles that get a feed-forward network (``stylize.train.styles``; null: every style) and their images."""
    wanted = train_cfg.get("styles")
    names = list(styles["names"])
    if wanted is None:
        return names, list(styles["images"])
    unknown = [s for s in wanted if s not in names]
    if unknown or not wanted:
        from cnnrnn.errors import UserError

        raise UserError(f"stylize.train.styles: {unknown[0] + ' is not a style' if unknown else 'empty'}; choose among "
                        f"{', '.join(names)} (stylize.data.styles)")
    return list(wanted), [styles["images"][names.index(s)] for s in wanted]


def save_model(module: StyleTransfer, model_dir: Path, datamodule: ContentCrops, params: dict[str, Any]) -> Path:
    """``model.pt``: each style's network weights, the style images, the loss network and ``stylize.loss`` (for
    ``--method optimize``), and the feed-forward networks' own loss (``train_loss_cfg``, a record)."""
    hp = module.hparams
    record = {"app": "stylize", "model_cfg": dict(hp.model_cfg), "loss_cfg": dict(params["loss"]),
              "train_loss_cfg": dict(hp.loss_cfg),
              "styles": list(hp.style_names), "style_images": module.style_images,
              # the styles without a network, for --method optimize
              "other_styles": {n: image for n, image in zip(datamodule.splits["styles"]["names"],
                                                            datamodule.splits["styles"]["images"]) if n not in hp.style_names},
              "state_dicts": {name: net.state_dict() for name, net in module.networks.items()},
              # the fitted stages alone (without a LuminanceOnly wrapper): --method optimize wraps them as stylize.loss says
              "loss_network_state": getattr(module.loss_network, "inner", module.loss_network).state_dict()
              if hp.loss_cfg["network"] == "patch_cnn" else None,
              "loss_record": dict(module.loss_record), "predict": dict(params["predict"])}
    return write_model_file(model_dir / "model.pt", record)
