"""Box geometry in plain PyTorch (no torchvision): conversion, pairwise IoU and non-maximum suppression.

Boxes are (N, 4) [x1, y1, x2, y2] except where a function says otherwise (see :func:`xywh_to_xyxy`).
"""

from __future__ import annotations

import torch


def xywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """(N, 4) [x, y, w, h] -> (N, 4) [x1, y1, x2, y2]."""
    return torch.cat([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], dim=1)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of (N, 4) and (M, 4) boxes in [x1, y1, x2, y2]. Out: (N, M)."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)  # (N,)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)  # (M,)
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])  # (N, M, 2)
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])  # (N, M, 2)
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=2)  # (N, M)
    union = area_a[:, None] + area_b[None, :] - inter
    return inter / union.clamp(min=1e-9)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression: from the best score down, drop boxes overlapping a kept one.

    In: boxes (N, 4) [x1, y1, x2, y2], scores (N,). A box is dropped when its IoU with a kept,
    better box is > ``iou_threshold``. Out: (n,) long indices into ``boxes``, by falling score.
    """
    order = scores.argsort(descending=True)
    overlaps = (box_iou(boxes[order], boxes[order]) > iou_threshold).tolist()  # plain lists: fast for small N
    suppressed = [False] * len(order)
    kept = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        kept.append(i)
        row = overlaps[i]
        for j in range(i + 1, len(order)):
            suppressed[j] = suppressed[j] or row[j]
    return order[torch.tensor(kept, dtype=torch.long, device=boxes.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """:func:`nms` within each class: boxes of different ``labels`` (N,) never suppress each other.

    Shifts each class's boxes by its own offset, larger than any coordinate, so boxes of
    different classes cannot overlap, then runs one :func:`nms`. Out: (n,) long indices.
    """
    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    shift = labels.to(boxes.dtype) * (boxes.max() - boxes.min() + 1)  # (N,)
    return nms(boxes + shift[:, None], scores, iou_threshold)
