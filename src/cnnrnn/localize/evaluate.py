"""Evaluate the localizer on held-out images: class accuracy, IoU, and pictures of boxes.

:func:`evaluate` reports the test accuracy and mean IoU (each with its 95% bootstrap interval over
test images) and the share of images with the right class and IoU >= .5 / .75; :func:`validate`
measures accuracy and mean IoU on the validation split by the same :func:`localize_split`, and
writes nothing.

:func:`evaluate` writes to ``plots/localize/``: ``per_class.csv`` (accuracy and mean IoU per class),
``iou.csv`` (one row per test image, for ``dvc plots``), ``predictions.png`` (test images
with the true box in green and the predicted one in red).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from cnnrnn.intervals import accuracy_with_interval, interval, with_interval
from cnnrnn.localize.network import iou_and_giou, xywh_to_cxcywh
from cnnrnn.localize.predict import load
from cnnrnn.paths import AppPaths


@dataclass(frozen=True)
class LocalizedSplit:
    """A model's class and box for each of the N images of one prepared split (boxes x, y, w, h in its pixels)."""

    images: torch.Tensor  # (N, C, S, S) uint8
    boxes: torch.Tensor  # (N, 4) the true boxes
    labels: torch.Tensor  # (N,) the true classes
    predicted_boxes: torch.Tensor  # (N, 4)
    predicted_labels: torch.Tensor  # (N,)
    iou: torch.Tensor  # (N,) IoU of the predicted box with the true one

    @property
    def correct(self) -> torch.Tensor:
        """(N,) bool: the predicted class is the true one."""
        return self.predicted_labels == self.labels

    @property
    def accuracy(self) -> float:
        return round(float(self.correct.float().mean()), 4)

    @property
    def mean_iou(self) -> float:
        return round(float(self.iou.mean()), 4)


def localize_split(model, prepared: Path, split: str, batch_size: int) -> LocalizedSplit:
    """Class and box for every image of ``prepared/<split>.pt``: the one measurement behind both the test
    figures (:func:`evaluate`) and their validation twins (:func:`validate`)."""
    tensors = torch.load(prepared / f"{split}.pt")
    images, boxes, labels = tensors["images"], tensors["boxes"], tensors["labels"]
    size = model.image_shape[1]
    predicted_labels, predicted_boxes = [], []
    for i in range(0, len(images), batch_size):
        _, best, xywh = model.localize(images[i:i + batch_size].float() / 255)
        predicted_labels.append(best)
        predicted_boxes.append(xywh)
    predicted_labels, predicted_boxes = torch.cat(predicted_labels), torch.cat(predicted_boxes)
    iou, _ = iou_and_giou(xywh_to_cxcywh(predicted_boxes, size), xywh_to_cxcywh(boxes, size))
    return LocalizedSplit(images, boxes, labels, predicted_boxes, predicted_labels, iou)


def validate(params: dict[str, Any], paths: AppPaths) -> dict[str, float]:
    """The bar metrics on the validation split: ``val_accuracy``, ``val_mean_iou`` (no files written)."""
    val = localize_split(load(paths.model_dir), paths.prepared, "val", params["evaluate"]["batch_size"])
    return {"val_accuracy": val.accuracy, "val_mean_iou": val.mean_iou}


def evaluate(params: dict[str, Any], paths: AppPaths) -> tuple[dict[str, Any], list[Path]]:
    cfg = params["evaluate"]
    model = load(paths.model_dir)
    test = localize_split(model, paths.prepared, "test", cfg["batch_size"])
    iou, correct, labels = test.iou, test.correct, test.labels
    table = pd.DataFrame({"class": [model.classes[i] for i in labels.tolist()], "correct": correct.numpy(),
                          "iou": iou.numpy()})
    per_class = table.groupby("class", sort=False).agg(accuracy=("correct", "mean"), mean_iou=("iou", "mean"),
                                                       support=("iou", "size")).reset_index()
    out = paths.plots
    per_class.round(4).to_csv(out / "per_class.csv", index=False)
    table.assign(image=range(len(table))).round(4)[["image", "class", "iou"]].to_csv(out / "iou.csv", index=False)
    shown = cfg["pictures_shown"]
    picture = draw_predictions(test.images[:shown], test.boxes, test.predicted_boxes, labels, test.predicted_labels,
                               model.classes, cfg["grid_columns"], out / "predictions.png")
    resamples, seed = cfg["resamples"], params["seed"]  # the same draws of test images for both intervals
    metrics = {**accuracy_with_interval("test_accuracy", correct.numpy(), resamples, seed),
               **with_interval("mean_iou", test.mean_iou, *interval(iou.double().numpy(), resamples, seed)),
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
