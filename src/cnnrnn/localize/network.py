"""The localize CNN as a plain ``nn.Module``: classify's ConvNet with four more outputs for the box."""

from __future__ import annotations

import torch
from torch import nn

from cnnrnn.convnet import build_network


class Localizer(nn.Module):
    """Images (B, C, H, W) floats in [0, 1] -> (class logits (B, K), boxes (B, 4)).

    One CNN body (classify's conv -> ReLU -> max-pool blocks), two heads: the box head is
    classify's dense head over the flattened map (where things are), the class head pools the
    map over all positions, average and max (what is there, wherever it is), so it need not
    learn every digit at every place. Boxes are (centre x, centre y, width, height) as
    fractions of the image side, in (0, 1).
    """

    def __init__(self, model_cfg: dict, in_channels: int, num_classes: int, image_size: int,
                 mean: list[float] | None = None, std: list[float] | None = None):
        super().__init__()
        self.num_classes = num_classes
        self.cnn = build_network(model_cfg, in_channels, 4, image_size, mean, std)
        width = model_cfg["channels"][-1]
        self.classifier = nn.Sequential(nn.Dropout(model_cfg["dropout"]), nn.Linear(2 * width, num_classes))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.cnn.blocks((images - self.cnn.mean) / self.cnn.std)  # (B, C', h, w)
        pooled = torch.cat([features.mean(dim=(2, 3)), features.amax(dim=(2, 3))], dim=1)  # (B, 2C')
        return self.classifier(pooled), torch.sigmoid(self.cnn.head(features))  # (B, K), (B, 4)


def xywh_to_cxcywh(boxes: torch.Tensor, size: float) -> torch.Tensor:
    """COCO [x, y, w, h] pixels (N, 4) -> [cx, cy, w, h] as fractions of ``size`` (N, 4)."""
    x, y, w, h = boxes.unbind(-1)
    return torch.stack([x + w / 2, y + h / 2, w, h], -1) / size


def cxcywh_to_xywh(boxes: torch.Tensor, size: float) -> torch.Tensor:
    cx, cy, w, h = (boxes * size).unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, w, h], -1)


def iou_and_giou(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairwise-aligned IoU and generalized IoU of boxes (N, 4) in [cx, cy, w, h]; each (N,)."""
    a1, a2 = a[:, :2] - a[:, 2:] / 2, a[:, :2] + a[:, 2:] / 2
    b1, b2 = b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2
    inter = (torch.minimum(a2, b2) - torch.maximum(a1, b1)).clamp_min(0).prod(-1)
    union = a[:, 2:].prod(-1) + b[:, 2:].prod(-1) - inter
    iou = inter / union.clamp_min(1e-9)
    hull = (torch.maximum(a2, b2) - torch.minimum(a1, b1)).prod(-1)
    return iou, iou - (hull - union) / hull.clamp_min(1e-9)
