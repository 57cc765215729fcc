"""The loss network of ``stylize.loss``: built (random) or fitted (``patch_cnn``) before the style networks train.

``patch_cnn`` is a small VGG-shaped CNN that the train stage fits on the *training* photographs and
the style images only (never a validation or test photograph): given a random patch (random place,
scale and flip), which image does it come from? Telling brick from gravel from a photograph's
sky takes colour and texture features, which is what a style loss needs. Plain torch, seeded.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnrnn.stylize.crops import random_crop
from cnnrnn.stylize.features import (FeatureNetwork, LossLevels, LuminanceOnly, StagedNetwork, VGG19Features,
                                     build_random_network, load_vgg19_weights)


def random_patches(images: list[torch.Tensor], count: int, side: int, scales: tuple[float, float],
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random crops (count, 3, side, side) (:func:`~cnnrnn.stylize.crops.random_crop`) and the index of
    the image each comes from."""
    labels = torch.randint(len(images), (count,), generator=generator)
    return torch.stack([random_crop(images[label], side, scales, generator) for label in labels.tolist()]), labels


def fit_patch_cnn(cfg: dict[str, Any], images: list[torch.Tensor], seed: int) -> tuple[StagedNetwork, dict[str, float]]:
    """Fit the patch classifier of ``cfg`` (``channels``, ``convs_per_stage``, ``steps``, ``batch_size``,
    ``patch_side``, ``scales``, ``lr``) on ``images`` (each its own class); return its feature stages."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # its own draws: the caller's random state is left as it was
        torch.manual_seed(seed)
        network = StagedNetwork(cfg["channels"], cfg["convs_per_stage"])
        head = nn.Linear(cfg["channels"][-1] * 2, len(images))
    parameters = [*network.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=cfg["lr"], weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg["lr"], total_steps=cfg["steps"], pct_start=0.2)
    start, correct, seen = time.perf_counter(), 0, 0
    for step in range(cfg["steps"]):
        patches, labels = random_patches(images, cfg["batch_size"], cfg["patch_side"], tuple(cfg["scales"]), generator)
        last = network(patches)[-1]
        logits = head(torch.cat([last.mean(dim=(2, 3)), last.amax(dim=(2, 3))], dim=1))
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step >= cfg["steps"] * 3 // 4:  # accuracy over the last quarter of the steps
            correct += int((logits.argmax(1) == labels).sum())
            seen += len(labels)
        if (step + 1) % max(1, cfg["steps"] // 10) == 0:
            print(f"stylize: loss network (patch_cnn) step {step + 1}/{cfg['steps']} loss {float(loss.detach()):.3f}",
                  file=sys.stderr, flush=True)
    record = {"loss_network_seconds": round(time.perf_counter() - start, 2),
              "loss_network_patch_accuracy": round(correct / max(seen, 1), 4), "loss_network_classes": len(images)}
    return network.freeze(), record


def build_loss_network(cfg: dict[str, Any], images: list[torch.Tensor] | None = None, seed: int = 0,
                       weights_file=None) -> tuple[LossLevels, dict[str, Any]]:
    """The loss network of ``cfg`` (``stylize.loss``) and a record of how it was made.

    ``images`` (training photographs and style images) are needed for ``patch_cnn``; ``weights_file`` for ``vgg16``
    and ``vgg19`` (:func:`weights_path`).
    """
    kind = cfg["network"]
    if kind in ("random_pyramid", "random_staged"):
        network, record = build_random_network({**cfg, "kind": kind}), {}
    elif kind == "patch_cnn":
        if not images:
            raise ValueError("patch_cnn needs the training images to fit on")
        network, record = fit_patch_cnn(cfg, images, seed)
    elif kind == "vgg19":
        network, record = load_vgg19_weights(VGG19Features(), weights_file), {}
    elif kind == "vgg16":
        from cnnrnn.stylize.vgg16 import load_vgg16_features

        cfg = {**cfg, **vgg16_levels(cfg)}
        network, record = load_vgg16_features(weights_file, vgg16_taps(cfg)), {}
    else:
        raise ValueError(f"unknown loss network {kind!r}; choose vgg16, random_pyramid, random_staged, patch_cnn or vgg19")
    return loss_levels(network, cfg), record


# Where each pretrained loss network's ``weights_file`` lies, under data/stylize/: vgg19's is fetched as it is,
# vgg16's is converted by prepare from the fetched Keras file.
WEIGHTS_FOLDERS = {"vgg19": "raw", "vgg16": "prepared"}


def weights_path(cfg: dict[str, Any], data_dir: Path) -> Path | None:
    """The weights file ``cfg`` (``stylize.loss``) names, under ``data_dir`` (data/stylize); None for the others."""
    folder = WEIGHTS_FOLDERS.get(cfg["network"])
    return Path(data_dir) / folder / cfg["weights_file"] if folder and cfg.get("weights_file") else None


def vgg16_taps(cfg: dict[str, Any]) -> tuple[str, ...]:
    """The VGG-16 layers ``cfg`` uses (``style_layers`` and ``content_layer``), in network order."""
    from cnnrnn.stylize.vgg16 import VGG16_RELUS

    names = {*cfg["style_layers"], cfg["content_layer"]}
    unknown = sorted(n for n in names if n not in VGG16_RELUS)
    if unknown:
        from cnnrnn.errors import UserError

        raise UserError(f"stylize.loss: unknown VGG-16 layer {unknown[0]!r}; use one of {', '.join(VGG16_RELUS)}")
    return tuple(sorted(names, key=VGG16_RELUS.get))


def vgg16_levels(cfg: dict[str, Any]) -> dict[str, Any]:
    """``style_levels`` and ``content_level`` (positions among :func:`vgg16_taps`) of the layers ``cfg`` names."""
    taps = vgg16_taps(cfg)
    return {"style_levels": [taps.index(n) for n in cfg["style_layers"]], "content_level": taps.index(cfg["content_layer"])}


def loss_levels(network: FeatureNetwork, cfg: dict[str, Any]) -> LossLevels:
    """``network``'s style and content levels as ``cfg`` names them, seen through :class:`LuminanceOnly` where
    ``luminance_only`` is set: the Gram and content losses then see texture and shapes only, and colour is left to
    the sliced colour loss (nothing holds it where ``colour_weight`` is 0). A fitted ``patch_cnn`` is fitted on
    colour patches all the same, and wrapped after."""
    if cfg.get("luminance_only"):
        network = LuminanceOnly(network).freeze()
    return LossLevels(network, cfg["style_levels"], cfg["content_level"], cfg.get("gram", "plain"))
