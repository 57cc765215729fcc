"""The detect network: a small CenterNet (objects as points) as a plain ``nn.Module``, plus its
targets, loss, decoding and non-maximum suppression, all in plain PyTorch (no torchvision).

CenterNet predicts, on a grid ``stride`` times coarser than the image, a heatmap per class whose
peaks are object centres, and at each cell the box size and the sub-cell offset of the centre.
There are no anchors, and decoding is a 3x3 max-pool plus top-k, so NMS is optional.

The recipe: a backbone of conv -> BN -> ReLU stages, each halving the resolution; a top-down
path (a tiny FPN) that upsamples the deepest map back to ``stride`` with a skip connection from
every stage on the way; three heads on that map. With the recommended config
(channels [16, 32, 64, 128], neck 64, heads 32, stride 4) a 128x128 image costs 0.16 GMAC
(tests/test_detect_network.py counts it); a forward of 64 such images takes about 0.1 s on
two idle CPU cores, a training step about 0.35 s on one.

Box conventions: ``decode`` and ``centernet_targets`` use COCO [x, y, w, h] in input pixels;
``box_iou``, ``nms`` and ``batched_nms`` use [x1, y1, x2, y2] (see :func:`xywh_to_xyxy`).
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


def gaussian_radius(heights: torch.Tensor, widths: torch.Tensor, min_overlap: float) -> torch.Tensor:
    """CenterNet's (CornerNet's) gaussian radius, in cells, for boxes of ``heights`` x ``widths`` cells.

    The largest shift of a box's corners that still leaves IoU >= ``min_overlap`` with the true
    box, as the smallest root of three quadratics (both corners inside, both outside, one
    each). Kept exactly as CenterNet's ``gaussian_radius`` (which divides by 2, not 2a), so the
    heatmaps match the published recipe. In: (N,), (N,) floats. Out: (N,) floats.
    """
    h, w = heights, widths
    b1 = h + w
    c1 = w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + torch.sqrt(b1 ** 2 - 4 * c1)) / 2
    b2 = 2 * (h + w)
    c2 = (1 - min_overlap) * w * h
    r2 = (b2 + torch.sqrt(b2 ** 2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (h + w)
    c3 = (min_overlap - 1) * w * h
    r3 = (b3 + torch.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return torch.minimum(torch.minimum(r1, r2), r3)


def centernet_targets(boxes_list: list[torch.Tensor], labels_list: list[torch.Tensor], num_classes: int,
                      image_size: tuple[int, int], stride: int, min_overlap: float = 0.7) -> dict[str, torch.Tensor]:
    """Dense training targets for :class:`CenterNet` from per-image boxes.

    In: ``boxes_list[b]`` (N_b, 4) COCO [x, y, w, h] in input pixels, ``labels_list[b]`` (N_b,)
    class indices in [0, num_classes); ``image_size`` (H, W) of the input. Boxes with w or h
    <= 0 are ignored. Out, with (H', W') = ceil((H, W) / stride):

    - ``heatmap``: (B, num_classes, H', W') a truncated gaussian (peak exactly 1) of radius
      :func:`gaussian_radius` at each centre cell; overlapping gaussians take the max.
    - ``size``: (B, 2, H', W') log (w, h) at centre cells, 0 elsewhere (the network's encoding).
    - ``offset``: (B, 2, H', W') centre / stride minus its cell, in [0, 1), at centre cells.
    - ``mask``: (B, H', W') 1.0 at centre cells, 0 elsewhere. When two objects share a cell the
      last one's size and offset are kept.
    """
    out_h, out_w = -(-image_size[0] // stride), -(-image_size[1] // stride)
    batch = len(boxes_list)
    counts = [len(b) for b in boxes_list]
    device = boxes_list[0].device if batch else torch.device("cpu")
    heatmap = torch.zeros(batch * num_classes, out_h * out_w, device=device)
    size = torch.zeros(batch, 2, out_h, out_w, device=device)
    offset = torch.zeros(batch, 2, out_h, out_w, device=device)
    mask = torch.zeros(batch, out_h, out_w, device=device)
    if sum(counts) == 0:
        return {"heatmap": heatmap.view(batch, num_classes, out_h, out_w), "size": size, "offset": offset,
                "mask": mask}
    boxes = torch.cat([b.reshape(-1, 4) for b in boxes_list]).float().to(device)  # (N, 4) over the batch
    labels = torch.cat([lab.reshape(-1) for lab in labels_list]).long().to(device)  # (N,)
    image = torch.repeat_interleave(torch.arange(batch, device=device), torch.tensor(counts, device=device))
    valid = (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    boxes, labels, image = boxes[valid], labels[valid], image[valid]

    centre = (boxes[:, :2] + boxes[:, 2:] / 2) / stride  # (N, 2) x, y in cells
    cell = centre.floor().long()
    cell[:, 0].clamp_(0, out_w - 1)
    cell[:, 1].clamp_(0, out_h - 1)
    radius = gaussian_radius(boxes[:, 3] / stride, boxes[:, 2] / stride, min_overlap).floor().clamp(min=0)  # (N,)
    sigma = (2 * radius + 1) / 6
    # Every object's gaussian over the whole grid at once, (N, H', W'), cheap at 32x32 maps. It is
    # separable: exp(-(dx^2 + dy^2) / 2s^2) = exp(-dx^2 / 2s^2) * exp(-dy^2 / 2s^2), and so is
    # the (2r+1)^2 window CenterNet draws it in.
    def profile(length: int, at: torch.Tensor) -> torch.Tensor:  # (N, length)
        d = (torch.arange(length, device=device).view(1, -1) - at.view(-1, 1)).float()
        return torch.exp(-d ** 2 / (2 * sigma.view(-1, 1) ** 2)) * (d.abs() <= radius.view(-1, 1))

    gauss = profile(out_h, cell[:, 1]).unsqueeze(2) * profile(out_w, cell[:, 0]).unsqueeze(1)  # (N, H', W')
    rows = (image * num_classes + labels).view(-1, 1).expand(-1, out_h * out_w)  # (N, H' * W')
    heatmap.scatter_reduce_(0, rows, gauss.view(len(boxes), -1), "amax")

    size[image, :, cell[:, 1], cell[:, 0]] = boxes[:, 2:].log()
    offset[image, :, cell[:, 1], cell[:, 0]] = centre - cell
    mask[image, cell[:, 1], cell[:, 0]] = 1.0
    return {"heatmap": heatmap.view(batch, num_classes, out_h, out_w), "size": size, "offset": offset, "mask": mask}


def centernet_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], size_weight: float,
                   offset_weight: float, focal_alpha: float = 2.0,
                   focal_beta: float = 4.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """CenterNet's loss: focal loss on the heatmap + weighted L1 on size and offset at centres.

    ``outputs`` as :class:`CenterNet` returns them, ``targets`` as :func:`centernet_targets`
    builds them (same map sizes). The heatmap loss is the penalty-reduced focal loss
    (``focal_alpha`` 2, ``focal_beta`` 4 in the paper): cells near a centre are penalised less
    for a high score, by (1 - target) ** beta. All three parts are divided by the number of
    objects (at least 1); the L1 parts are also averaged over their 2 coordinates.
    Out: (total scalar, {"heatmap", "size", "offset"} detached scalars).
    """
    logits, target = outputs["heatmap"], targets["heatmap"]  # (B, C, H', W')
    prob = torch.sigmoid(logits)
    positive = target.eq(1).float()
    # log(p) and log(1 - p) from logits stay finite where sigmoid would round to 0 or 1.
    positive_loss = F.logsigmoid(logits) * (1 - prob) ** focal_alpha * positive
    negative_loss = F.logsigmoid(-logits) * prob ** focal_alpha * (1 - target) ** focal_beta * (1 - positive)
    num_objects = positive.sum().clamp(min=1)
    heatmap_loss = -(positive_loss.sum() + negative_loss.sum()) / num_objects

    mask = targets["mask"].unsqueeze(1)  # (B, 1, H', W')
    size_loss = ((outputs["size"] - targets["size"]).abs() * mask).sum() / (2 * num_objects)
    offset_loss = ((outputs["offset"] - targets["offset"]).abs() * mask).sum() / (2 * num_objects)
    total = heatmap_loss + size_weight * size_loss + offset_weight * offset_loss
    return total, {"heatmap": heatmap_loss.detach(), "size": size_loss.detach(), "offset": offset_loss.detach()}


@torch.no_grad()
def decode(outputs: dict[str, torch.Tensor], k: int, score_threshold: float, stride: int,
           nms_iou: float | None = None) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Detections from :class:`CenterNet` outputs.

    Peaks of the sigmoid heatmap (cells equal to the max of their 3x3 neighbourhood), the ``k``
    best over all classes per image, those scoring >= ``score_threshold``; each box is centred
    at (cell + offset) * stride with size exp(size). With ``nms_iou`` set, class-wise NMS at that
    IoU follows (CenterNet's peaks rarely need it). Out, per image: (boxes (n, 4) COCO
    [x, y, w, h] in input pixels, scores (n,), labels (n,) long), sorted by falling score.
    """
    heat = torch.sigmoid(outputs["heatmap"])  # (B, C, H', W')
    batch, num_classes, out_h, out_w = heat.shape
    peaks = heat * (F.max_pool2d(heat, 3, 1, 1) == heat)
    scores, index = peaks.view(batch, -1).topk(min(k, num_classes * out_h * out_w))  # (B, k)
    labels = index // (out_h * out_w)
    cell = index % (out_h * out_w)  # (B, k) flat y * W' + x
    ys, xs = (cell // out_w).float(), (cell % out_w).float()
    offset = outputs["offset"].flatten(2).gather(2, cell.unsqueeze(1).expand(-1, 2, -1))  # (B, 2, k)
    size = outputs["size"].flatten(2).gather(2, cell.unsqueeze(1).expand(-1, 2, -1)).exp()  # (B, 2, k) w, h
    cx, cy = (xs + offset[:, 0]) * stride, (ys + offset[:, 1]) * stride  # (B, k)
    boxes = torch.stack([cx - size[:, 0] / 2, cy - size[:, 1] / 2, size[:, 0], size[:, 1]], dim=-1)  # (B, k, 4)
    detections = []
    for b in range(batch):
        keep = scores[b] >= score_threshold
        image_boxes, image_scores, image_labels = boxes[b][keep], scores[b][keep], labels[b][keep]
        if nms_iou is not None:
            kept = batched_nms(xywh_to_xyxy(image_boxes), image_scores, image_labels, nms_iou)
            image_boxes, image_scores, image_labels = image_boxes[kept], image_scores[kept], image_labels[kept]
        detections.append((image_boxes, image_scores, image_labels))
    return detections


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
