"""Evaluate a trained classifier on the held-out test split: numbers, tables and pictures.

:func:`evaluate` reports the test accuracy (with its 95% bootstrap interval over test images),
macro F1 and loss; :func:`validate` measures the same accuracy on the validation split by the
same :func:`classify_split`, and writes nothing.

:func:`evaluate` writes to ``plots/classify/``: ``confusion.csv`` (actual, predicted per image:
``dvc plots`` draws the matrix), ``per_class.csv`` (precision/recall/F1/support),
``confusion_matrix.png``, ``misclassified.png`` (a grid of test images the model got wrong) and
``feature_maps.png`` (conv -> ReLU -> pool of the first block on one test image).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cnnrnn.classify.network import first_block_maps
from cnnrnn.classify.predict import load
from cnnrnn.intervals import accuracy_with_interval
from cnnrnn.paths import AppPaths


def confusion_matrix(actual: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (n_classes, n_classes): row = actual class, column = predicted class."""
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (actual, predicted), 1)
    return confusion


def per_class_table(confusion: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support per class (classes never predicted get precision 0)."""
    n = len(classes)
    true_pos = np.diag(confusion).astype(float)
    predicted_count, support = confusion.sum(0), confusion.sum(1)
    precision = np.divide(true_pos, predicted_count, out=np.zeros(n), where=predicted_count > 0)
    recall = np.divide(true_pos, support, out=np.zeros(n), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(n), where=(precision + recall) > 0)
    return pd.DataFrame({"class": classes, "precision": precision, "recall": recall, "f1": f1, "support": support})


@dataclass(frozen=True)
class ClassifiedSplit:
    """A model's predictions on one prepared split of N images and K classes."""

    images: torch.Tensor  # (N, C, H, W) uint8
    labels: torch.Tensor  # (N,) int64, the true classes
    probs: torch.Tensor  # (N, K) predicted probabilities

    @property
    def actual(self) -> np.ndarray:
        return self.labels.numpy()

    @property
    def predicted(self) -> np.ndarray:
        return self.probs.argmax(1).numpy()

    @property
    def correct(self) -> np.ndarray:
        """(N,) bool: the top class is the true one."""
        return self.predicted == self.actual

    @property
    def accuracy(self) -> float:
        return round(float(self.correct.mean()), 4)


def classify_split(model, prepared: Path, split: str, batch_size: int) -> ClassifiedSplit:
    """Class probabilities for every image of ``prepared/<split>.pt``: the one measurement behind both the
    test figures (:func:`evaluate`) and their validation twins (:func:`validate`)."""
    tensors = torch.load(prepared / f"{split}.pt")
    images = tensors["images"]
    probs = torch.cat([model.probabilities(images[i:i + batch_size].float() / 255)
                       for i in range(0, len(images), batch_size)])
    return ClassifiedSplit(images, tensors["labels"], probs)


def validate(params: dict[str, Any], paths: AppPaths) -> dict[str, float]:
    """The bar metric on the validation split: ``val_accuracy`` (no files written)."""
    val = classify_split(load(paths.model_dir), paths.prepared, "val", params["evaluate"]["batch_size"])
    return {"val_accuracy": val.accuracy}


def evaluate(params: dict[str, Any], paths: AppPaths) -> tuple[dict[str, Any], list[Path]]:
    cfg = params["evaluate"]
    model = load(paths.model_dir)
    test = classify_split(model, paths.prepared, "test", cfg["batch_size"])
    images, labels, probs = test.images, test.labels, test.probs
    actual, predicted = test.actual, test.predicted
    classes = model.classes
    confusion = confusion_matrix(actual, predicted, len(classes))
    table = per_class_table(confusion, classes)
    out = paths.plots
    table.round(4).to_csv(out / "per_class.csv", index=False)
    pd.DataFrame({"actual": [classes[i] for i in actual], "predicted": [classes[i] for i in predicted]}).to_csv(
        out / "confusion.csv", index=False)
    files = [out / "per_class.csv", out / "confusion.csv",
             draw_confusion_matrix(confusion, classes, out / "confusion_matrix.png"),
             draw_misclassified(images, actual, predicted, probs, classes, cfg["misclassified_shown"],
                                cfg["grid_columns"], out / "misclassified.png"),
             draw_feature_maps(model, images[0:1].float() / 255, cfg["feature_maps_shown"], out / "feature_maps.png")]
    nll = float(torch.nn.functional.nll_loss(torch.log(probs.clamp_min(1e-12)), labels))
    metrics = {**accuracy_with_interval("test_accuracy", test.correct, cfg["resamples"], params["seed"]),
               "test_macro_f1": round(float(table["f1"].mean()), 4),
               "test_loss": round(nll, 4), "n_test": int(len(actual))}
    return metrics, files


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _show(ax, image: torch.Tensor) -> None:
    """Draw one (C, H, W) uint8 or float image without axes."""
    array = image.permute(1, 2, 0).numpy()
    ax.imshow(array[..., 0] if array.shape[-1] == 1 else array, cmap="gray" if array.shape[-1] == 1 else None)
    ax.set_axis_off()


def draw_confusion_matrix(matrix: np.ndarray, classes: list[str], path: Path) -> Path:
    n = len(classes)
    fig = _figure(1.0 + 0.55 * n, 0.8 + 0.5 * n)
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(f"test confusion matrix ({int(matrix.sum())} images)")
    fig.savefig(path)
    return path


def draw_misclassified(images: torch.Tensor, actual: np.ndarray, predicted: np.ndarray, probs: torch.Tensor,
                       classes: list[str], shown: int, cols: int, path: Path) -> Path:
    wrong = np.flatnonzero(actual != predicted)[:shown]
    rows = max(1, -(-len(wrong) // cols))
    fig = _figure(cols * 1.5, rows * 1.7)
    for k, i in enumerate(wrong):
        ax = fig.add_subplot(rows, cols, k + 1)
        _show(ax, images[i])
        ax.set_title(f"{classes[actual[i]]} → {classes[predicted[i]]}\n{float(probs[i, predicted[i]]):.2f}", fontsize=8)
    fig.suptitle(f"misclassified test images (actual → predicted, probability): {int((actual != predicted).sum())} in all"
                 if len(wrong) else "no misclassified test images")
    fig.savefig(path)
    return path


def draw_feature_maps(model, image: torch.Tensor, shown: int, path: Path) -> Path:
    """The input, then ``shown`` channels after each layer of the first block (conv, [BN], ReLU, pool)."""
    maps = first_block_maps(model.network, image)
    fig = _figure(1.3 * (shown + 1), 1.4 * len(maps))
    for r, (name, fmap) in enumerate(maps):
        ax = fig.add_subplot(len(maps), shown + 1, r * (shown + 1) + 1)
        if r == 0:
            _show(ax, image[0])
            ax.set_title("input", fontsize=8)
        else:
            ax.set_axis_off()
        ax.text(-0.1, 0.5, name, transform=ax.transAxes, ha="right", va="center", fontsize=8)
        for c in range(min(shown, fmap.shape[1])):
            ax = fig.add_subplot(len(maps), shown + 1, r * (shown + 1) + c + 2)
            ax.imshow(fmap[0, c].numpy(), cmap="viridis")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(f"channel {c}", fontsize=8)
    fig.suptitle("first block of the CNN on one test image: convolution → ReLU → max-pooling")
    fig.savefig(path)
    return path
