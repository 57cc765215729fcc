"""The seed's CNN as a plain ``nn.Module`` (no Lightning), so prediction loads fast.

classify uses it whole; localize uses its blocks and head under two output heads. The seed's recipe: convolutions (configurable kernel size and stride) -> ReLU -> max-pooling,
repeated, then a small fully connected head that outputs one score per class.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvNet(nn.Module):
    """Blocks of ``convs_per_block`` x (conv -> [batch norm] -> ReLU), each block ending in max-pooling.

    Input: images as floats in [0, 1], (B, C, H, W). Output: class logits, (B, num_classes).
    Per-channel ``mean``/``std`` of the training images are buffers, so the network
    normalizes its own input and callers never need to know them.
    """

    def __init__(self, in_channels: int, num_classes: int, image_size: int, channels: list[int],
                 convs_per_block: int, kernel_size: int, stride: int, pool: int, hidden: int,
                 dropout: float, batch_norm: bool, mean: list[float] | None = None, std: list[float] | None = None):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean or [0.5] * in_channels).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std or [0.25] * in_channels).view(1, -1, 1, 1))
        blocks, size, width = [], image_size, in_channels
        for out_width in channels:
            layers: list[nn.Module] = []
            for i in range(convs_per_block):
                # Only the first conv of a block strides; padding keeps "same" size at stride 1.
                step = stride if i == 0 else 1
                layers.append(nn.Conv2d(width, out_width, kernel_size, step, kernel_size // 2, bias=not batch_norm))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(out_width))
                layers.append(nn.ReLU(inplace=True))
                size = (size + 2 * (kernel_size // 2) - kernel_size) // step + 1
                width = out_width
            layers.append(nn.MaxPool2d(pool))
            size //= pool
            blocks.append(nn.Sequential(*layers))
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(width * size * size, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images - self.mean) / self.std  # (B, C, H, W)
        return self.head(self.blocks(x))  # (B, num_classes)


def feature_size(model_cfg: dict, image_size: int) -> int:
    """Height (= width) of the last block's feature map for square inputs of ``image_size``."""
    size, pad, k = image_size, model_cfg["kernel_size"] // 2, model_cfg["kernel_size"]
    for _ in model_cfg["channels"]:
        for i in range(model_cfg["convs_per_block"]):
            size = (size + 2 * pad - k) // (model_cfg["stride"] if i == 0 else 1) + 1
        size //= model_cfg["pool"]
    return size


def build_network(model_cfg: dict, in_channels: int, num_classes: int, image_size: int,
                  mean: list[float] | None = None, std: list[float] | None = None) -> ConvNet:
    """A :class:`ConvNet` from an application's ``model`` config (``classify.model``, ``localize.model``)."""
    from cnnrnn.errors import UserError

    if feature_size(model_cfg, image_size) < 1:
        raise UserError(f"model: {len(model_cfg['channels'])} blocks with stride {model_cfg['stride']} and "
                        f"pool {model_cfg['pool']} shrink {image_size}x{image_size} images to nothing; use fewer "
                        f"channels entries, stride 1 or a smaller pool")
    return ConvNet(in_channels, num_classes, image_size, list(model_cfg["channels"]), model_cfg["convs_per_block"],
                   model_cfg["kernel_size"], model_cfg["stride"], model_cfg["pool"], model_cfg["hidden"],
                   model_cfg["dropout"], model_cfg["batch_norm"], mean, std)
