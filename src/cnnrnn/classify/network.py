"""The classify network: the seed's CNN (:class:`~cnnrnn.convnet.ConvNet`, shared with localize) whole,
one logit per class; and what its first block computes, for the feature-map picture.

A plain ``nn.Module`` (no Lightning), so prediction loads fast.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnrnn.convnet import ConvNet, build_network


def build_classifier(model_cfg: dict, in_channels: int, num_classes: int, image_size: int,
                     mean: list[float] | None = None, std: list[float] | None = None) -> ConvNet:
    """A :class:`ConvNet` from ``classify.model``: images (B, C, H, W) in [0, 1] -> class logits (B, num_classes)."""
    return build_network(model_cfg, in_channels, num_classes, image_size, mean, std)


@torch.no_grad()
def first_block_maps(network: ConvNet, images: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """What the first block computes, step by step: [(layer name, (B, C', H', W')), ...]."""
    x = (images - network.mean) / network.std
    maps = []
    for layer in network.blocks[0]:
        x = layer(x.clone()) if isinstance(layer, nn.ReLU) else layer(x)
        maps.append((type(layer).__name__, x))
    return maps
