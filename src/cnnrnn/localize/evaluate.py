"""Evaluate the localizer on held-out images: class accuracy, IoU, and pictures of boxes.

Writes to ``plots/localize/``: ``per_class.csv`` (accuracy and mean IoU per class),
``iou.csv`` (one row per test image, for ``dvc plots``), ``predictions.png`` (test images
with the true box in green and the predicted one in red).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch

from cnnrnn.localize.network import iou_and_giou, xywh_to_cxcywh
from cnnrnn.localize.predict import load
from cnnrnn.paths import AppPaths


def evaluate(params: dict[str, Any], paths: AppPaths) -> tuple[dict[str, Any], list[Path]]:
    cfg = params["evaluate"]
    model = load(paths.model_dir)
    test = torch.load(paths.prepared / "test.pt")
    images, boxes, labels = test["images"], test["boxes"], test["labels"]
    size = model.image_shape[1]
    predicted_labels, predicted_boxes = [], []
    for i in range(0, len(images), cfg["batch_size"]):
        _, best, xywh = model.localize(images[i:i + cfg["batch_size"]].float() / 255)
        predicted_labels.append(best)
        predicted_boxes.append(xywh)
    predicted_labels, predicted_boxes = torch.cat(predicted_labels), torch.cat(predicted_boxes)
    iou, _ = iou_and_giou(xywh_to_cxcywh(predicted_boxes, size), xywh_to_cxcywh(boxes, size))
    correct = predicted_labels == labels
    table = pd.DataFrame({"class": [model.classes[i] for i in labels.tolist()], "correct": correct.numpy(),
                          "iou": iou.numpy()})
    per_class = table.groupby("class", sort=False).agg(accuracy=("correct", "mean"), mean_iou=("iou", "mean"),
                                                       support=("iou", "size")).reset_index()
    out = paths.plots
    per_class.round(4).to_csv(out / "per_class.csv", index=False)
    table.assign(image=range(len(table))).round(4)[["image", "class", "iou"]].to_csv(out / "iou.csv", index=False)
    picture = draw_predictions(images[: cfg["pictures_shown"]], boxes, predicted_boxes, labels, predicted_labels,
                               model.classes, cfg["grid_columns"], out / "predictions.png")
    metrics = {"test_accuracy": round(float(correct.float().mean()), 4), "mean_iou": round(float(iou.mean()), 4),
               "iou50_accuracy": round(float((correct & (iou >= 0.5)).float().mean()), 4),
               "iou75_accuracy": round(float((correct & (iou >= 0.75)).float().mean()), 4), "n_test": int(len(labels))}
    return metrics, [out / "per_class.csv", out / "iou.csv", picture]


def draw_predictions(images, boxes, predicted_boxes, labels, predicted_labels, classes, cols: int, path: Path) -> Path:
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    rows = max(1, -(-len(images) // cols))
    fig = Figure(figsize=(cols * 1.6, rows * 1.8), dpi=100, layout="constrained")
    for k in range(len(images)):
        ax = fig.add_subplot(rows, cols, k + 1)
        image = images[k].permute(1, 2, 0).numpy()
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=255)
        for box, colour in ((boxes[k], "lime"), (predicted_boxes[k], "red")):
            x, y, w, h = box.tolist()
            ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor=colour, linewidth=1.2))
        ax.set_title(f"{classes[int(labels[k])]} → {classes[int(predicted_labels[k])]}", fontsize=8)
        ax.set_axis_off()
    fig.suptitle("test images: true box green, predicted red (true → predicted class)")
    fig.savefig(path)
    return path
