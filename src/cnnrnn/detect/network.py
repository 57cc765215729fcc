"""The detect network: a small CenterNet (objects as points) as a plain ``nn.Module``.

CenterNet predicts, on a grid ``stride`` times coarser than the image, a heatmap per class whose
peaks are object centres, and at each cell the box size and the sub-cell offset of the centre.
There are no anchors, and decoding is a 3x3 max-pool plus top-k, so NMS is optional. Its
targets, loss and decoding live in :mod:`cnnrnn.detect.centernet`, box IoU and NMS in
:mod:`cnnrnn.detect.boxes`.

The recipe: a backbone of conv -> BN -> ReLU stages, each halving the resolution; a top-down
path (a tiny FPN) that upsamples the deepest map back to ``stride`` with a skip connection from
every stage on the way; three heads on that map. With the recommended config
(channels [16, 32, 64, 128], one conv per stage, neck 64, heads 32, stride 4) a 128x128 image
costs 0.12 GMAC (tests/test_detect_network.py counts it); `cnnrnn bench speed detect` measures
its images/s.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(in_width: int, out_width: int, stride: int = 1) -> nn.Sequential:
    """3x3 conv (padding keeps "same" size at stride 1) -> batch norm -> ReLU."""
    return nn.Sequential(nn.Conv2d(in_width, out_width, 3, stride, 1, bias=False), nn.BatchNorm2d(out_width),
                         nn.ReLU(inplace=True))


class CenterNet(nn.Module):
    """Backbone stages -> top-down neck back to ``stride`` -> heatmap, size and offset heads.

    Input: images as floats in [0, 1], (B, C, H, W); H and W should be multiples of
    ``2 ** len(channels)`` (other sizes work, the maps are then ceil-rounded).
    Output: a dict of maps at (H', W') = (H / stride, W / stride):

    - ``heatmap``: (B, num_classes, H', W') logits; sigmoid gives the centre score per class.
    - ``size``: (B, 2, H', W') log of the box (w, h) in input pixels; log, so the L1 loss weighs
      relative errors (2 px off a 16 px digit counts like 7 px off a 56 px one).
    - ``offset``: (B, 2, H', W') where in its cell the centre lies, (x, y) in cells, in [0, 1).

    Per-channel ``mean``/``std`` of the training images are buffers, so the network
    normalizes its own input and callers never need to know them.
    """

    def __init__(self, in_channels: int, num_classes: int, channels: list[int], convs_per_stage: int,
                 downsample: str, neck_channels: int, upsample: str, head_channels: int, stride: int,
                 heatmap_prior: float, mean: list[float] | None = None, std: list[float] | None = None):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean or [0.5] * in_channels).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std or [0.25] * in_channels).view(1, -1, 1, 1))
        self.stride = stride
        # Stage i works at stride 2 ** (i + 1); the neck joins the stages from the deepest one
        # down to the output stride.
        self.first_joined = int(math.log2(stride)) - 1
        stages, width = [], in_channels
        for out_width in channels:
            if downsample == "conv":
                layers = [conv_bn_relu(width, out_width, 2)]
            else:  # "maxpool"
                layers = [nn.MaxPool2d(2, ceil_mode=True), conv_bn_relu(width, out_width)]
            layers += [conv_bn_relu(out_width, out_width) for _ in range(convs_per_stage - 1)]
            stages.append(nn.Sequential(*layers))
            width = out_width
        self.stages = nn.ModuleList(stages)
        joined = channels[self.first_joined:]
        # 1x1 "lateral" convs bring every joined stage to the neck width so they can be added.
        self.laterals = nn.ModuleList(nn.Conv2d(w, neck_channels, 1) for w in joined)
        self.upsample = upsample
        self.ups = nn.ModuleList(nn.ConvTranspose2d(neck_channels, neck_channels, 2, 2) if upsample == "transposed"
                                 else nn.Identity() for _ in joined[:-1])
        # After each addition a 3x3 conv mixes the upsampled context with the finer skip.
        self.smooth = nn.ModuleList(conv_bn_relu(neck_channels, neck_channels) for _ in joined[:-1])

        def head(out: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(neck_channels, head_channels, 3, 1, 1), nn.ReLU(inplace=True),
                                 nn.Conv2d(head_channels, out, 1))

        self.heatmap = head(num_classes)
        self.size = head(2)
        self.offset = head(2)
        # Start every cell at score `heatmap_prior` (CenterNet: 0.1 -> bias -2.19), so the many
        # background cells do not swamp the focal loss in the first steps.
        nn.init.constant_(self.heatmap[-1].bias, -math.log((1 - heatmap_prior) / heatmap_prior))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (images - self.mean) / self.std  # (B, C, H, W)
        features = []
        for stage in self.stages:
            x = stage(x)  # (B, channels[i], H / 2^(i+1), W / 2^(i+1))
            features.append(x)
        features = features[self.first_joined:]
        x = self.laterals[-1](features[-1])  # (B, neck, H / 2^len(channels), ...)
        for level in range(len(features) - 2, -1, -1):
            skip = self.laterals[level](features[level])  # (B, neck, h, w): twice the size of x
            if self.upsample == "transposed":
                x = self.ups[level](x)[..., :skip.shape[-2], :skip.shape[-1]]
            else:
                x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
            x = self.smooth[level](x + skip)  # (B, neck, h, w)
        # x: (B, neck, H / stride, W / stride)
        return {"heatmap": self.heatmap(x), "size": self.size(x), "offset": self.offset(x)}


def build_network(model_cfg: dict, in_channels: int, num_classes: int,
                  mean: list[float] | None = None, std: list[float] | None = None) -> CenterNet:
    """A :class:`CenterNet` from ``detect.model`` of the config.

    Keys: ``channels`` (output width of each backbone stage; stage i at stride 2^(i+1)),
    ``convs_per_stage``, ``downsample`` ("conv": the first conv of a stage has stride 2;
    "maxpool": 2x2 max-pooling before it), ``neck_channels``, ``upsample`` ("nearest" or
    "transposed"), ``head_channels``, ``stride`` (of the output maps; a power of 2) and
    ``heatmap_prior`` (initial heatmap score, 0.1 in CenterNet).
    """
    from cnnrnn.errors import UserError

    channels, stride = list(model_cfg["channels"]), model_cfg["stride"]
    deepest = 2 ** len(channels)
    if stride < 2 or stride & (stride - 1) or stride > deepest:
        raise UserError(f"detect.model.stride: expected a power of 2 between 2 and {deepest} "
                        f"(2 ** len(channels)), got {stride}; use 4 or add channels entries")
    if model_cfg["downsample"] not in ("conv", "maxpool"):
        raise UserError(f"detect.model.downsample: expected 'conv' or 'maxpool', got {model_cfg['downsample']!r}")
    if model_cfg["upsample"] not in ("nearest", "transposed"):
        raise UserError(f"detect.model.upsample: expected 'nearest' or 'transposed', got {model_cfg['upsample']!r}")
    if model_cfg["convs_per_stage"] < 1:
        raise UserError(f"detect.model.convs_per_stage: expected at least 1, got {model_cfg['convs_per_stage']}")
    if not 0 < model_cfg["heatmap_prior"] < 1:
        raise UserError(f"detect.model.heatmap_prior: expected a probability in (0, 1), "
                        f"got {model_cfg['heatmap_prior']}; CenterNet uses 0.1")
    return CenterNet(in_channels, num_classes, channels, model_cfg["convs_per_stage"], model_cfg["downsample"],
                     model_cfg["neck_channels"], model_cfg["upsample"], model_cfg["head_channels"], stride,
                     model_cfg["heatmap_prior"], mean, std)
