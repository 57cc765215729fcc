"""CenterNet's encoding of boxes: training targets and loss for :class:`~cnnrnn.detect.network.CenterNet`,
and decoding its outputs back into boxes.

Boxes are COCO [x, y, w, h] in input pixels; the maps are ``stride`` times coarser than the image.
Targets: a gaussian peak per object centre on its class's heatmap, plus the log box size and the
sub-cell offset of the centre at that cell. Loss: penalty-reduced focal loss on the heatmap, L1 on
size and offset. Decoding: 3x3 max-pool peaks and top-k, optionally class-wise NMS
(:mod:`cnnrnn.detect.boxes`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnrnn.detect.boxes import batched_nms, xywh_to_xyxy


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
