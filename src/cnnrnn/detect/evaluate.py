"""Evaluate the detector on held-out images with pycocotools' COCOeval (the mAP reported is COCOeval's own).

:func:`evaluate` scores the test split: COCOeval's mAP, mAP@.5 (each with a 95% bootstrap interval over
test images, :mod:`cnnrnn.coco.average_precision`), mAP@.75 and AR@100. It writes
``data/detect/evaluation/detections_test.json`` (COCO results format), ``plots/detect/per_class_ap.csv``
(AP and AP@.5 per class), ``plots/detect/predictions.png`` (test images: ground truth green,
detections red). :func:`validate` scores the validation split by the same :func:`detect_split` and
writes nothing.

The model's label i is its ``classes[i]``; it reaches COCO as the test file's category of that
name, so any category ids (not only 1..K in the model's order) score right.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cnnrnn.atomic import write_text_atomically
from cnnrnn.coco.average_precision import map_intervals
from cnnrnn.detect.predict import load
from cnnrnn.errors import UserError
from cnnrnn.paths import AppPaths


def category_ids_by_label(classes: list[str], categories: dict[int, str], source: Path | str) -> list[int]:
    """The COCO category id of each model label: ``classes[label]`` looked up by name in
    ``categories`` ({id: name}, read from ``source``). A class missing there is a :class:`UserError`."""
    ids = {name: category for category, name in categories.items()}
    missing = [name for name in classes if name not in ids]
    if missing:
        raise UserError(f"{source} has no category named {', '.join(map(repr, missing))}, which the model detects "
                        f"(model classes {classes}; the file lists {sorted(ids)}); the model was trained on other "
                        f"data: retrain it with `dvc repro detect_train`")
    return [ids[name] for name in classes]


def coco_evaluation(truth, results: list[dict]):
    """A pycocotools ``COCOeval`` (bbox) of ``results`` (COCO results format) against ``truth`` (a ``COCO``),
    evaluated, accumulated and summarized. No detections at all score 0, with a warning on stderr."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not results:
        print(f"cnnrnn: warning: no detections at all in the {len(truth.getImgIds())} images (is "
              f"predict.score_threshold too high, or the model untrained?); mAP and AR are 0", file=sys.stderr)
    with contextlib.redirect_stdout(io.StringIO()):
        # loadRes fails on an empty list; an empty COCO is the same "nothing found" to COCOeval.
        # It also adds keys (id, area, ...) to the dicts it gets: give it copies, keep ``results`` as written.
        found = truth.loadRes([dict(r) for r in results]) if results else COCO()
        evaluation = COCOeval(truth, found, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation


def summary_metrics(evaluation) -> dict[str, float]:
    """COCOeval's summary: ``map``, ``map_50``, ``map_75``, ``mar_100`` (4 decimals)."""
    stats = evaluation.stats
    return {name: round(float(stats[i]), 4) for name, i in (("map", 0), ("map_50", 1), ("map_75", 2), ("mar_100", 8))}


def per_class_ap(evaluation, truth) -> pd.DataFrame:
    """One row per category of ``truth``, by id: ``class``, ``ap``, ``ap_50``, ``objects``."""
    precision = evaluation.eval["precision"]  # (IoU thresholds, recall, categories, areas, max dets)
    rows = []
    for k, category in enumerate(evaluation.params.catIds):  # the sorted category ids of truth
        p = precision[:, :, k, 0, -1]
        p50 = precision[0, :, k, 0, -1]
        rows.append({"class": truth.cats[category]["name"], "ap": float(np.mean(p[p > -1])) if (p > -1).any() else 0.0,
                     "ap_50": float(np.mean(p50[p50 > -1])) if (p50 > -1).any() else 0.0,
                     "objects": len(truth.getAnnIds(catIds=[category]))})
    return pd.DataFrame(rows)


def score_detections(truth, results: list[dict]) -> tuple[dict[str, float], pd.DataFrame]:
    """COCOeval (bbox) of ``results`` against ``truth``: :func:`summary_metrics` and :func:`per_class_ap`."""
    evaluation = coco_evaluation(truth, results)
    return summary_metrics(evaluation), per_class_ap(evaluation, truth)


def coco_results(model, tensors: dict[str, torch.Tensor], batch_size: int, category_ids: list[int]) -> list[dict]:
    """Detections for every prepared image, mapped back to its original pixels, as COCO results."""
    results = []
    size = model.image_shape[1]
    images = tensors["images"]
    for start in range(0, len(images), batch_size):
        found = model.detect(images[start:start + batch_size].float() / 255)
        for offset, (boxes, scores, labels) in enumerate(found):
            row = start + offset
            width, height = tensors["original_sizes"][row].tolist()
            scale = torch.tensor([width / size, height / size, width / size, height / size])
            for box, score, label in zip((boxes * scale).tolist(), scores.tolist(), labels.tolist()):
                results.append({"image_id": int(tensors["image_ids"][row]), "category_id": category_ids[label],
                                "bbox": [round(v, 2) for v in box], "score": round(score, 5)})
    return results


@dataclass(frozen=True)
class DetectedSplit:
    """The model's detections on one prepared split, scored by COCOeval."""

    tensors: dict[str, torch.Tensor]  # the split's ``<split>.pt``: images (N, C, S, S) uint8, image_ids (N,), ...
    truth: Any  # pycocotools COCO of ``instances_<split>.json``
    results: list[dict]  # the detections, COCO results format, in the original pixels
    evaluation: Any  # the evaluated COCOeval

    @property
    def metrics(self) -> dict[str, float]:
        return summary_metrics(self.evaluation)


def detect_split(model, prepared: Path, split: str, batch_size: int) -> DetectedSplit:
    """Detect every image of ``prepared/<split>.pt`` and score against ``prepared/instances_<split>.json``:
    the one measurement behind both the test figures (:func:`evaluate`) and their validation twins
    (:func:`validate`)."""
    from pycocotools.coco import COCO

    tensors = torch.load(prepared / f"{split}.pt")
    truth_file = prepared / f"instances_{split}.json"
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(truth_file))
    # prepare checked that every split lists the same categories; labels map to them by the model's class names
    category_ids = category_ids_by_label(model.classes, {i: c["name"] for i, c in truth.cats.items()}, truth_file)
    results = coco_results(model, tensors, batch_size, category_ids)
    return DetectedSplit(tensors, truth, results, coco_evaluation(truth, results))


def validate(params: dict[str, Any], paths: AppPaths) -> dict[str, float]:
    """The bar metrics on the validation split: ``val_map``, ``val_map_50`` (no files written)."""
    scored = detect_split(load(paths.model_dir), paths.prepared, "val", params["evaluate"]["batch_size"]).metrics
    return {"val_map": scored["map"], "val_map_50": scored["map_50"]}


def evaluate(params: dict[str, Any], paths: AppPaths) -> tuple[dict[str, Any], list[Path]]:
    cfg = params["evaluate"]
    model = load(paths.model_dir)
    test = detect_split(model, paths.prepared, "test", cfg["batch_size"])
    detections = paths.output("data/detect/evaluation") / "detections_test.json"
    write_text_atomically(detections, json.dumps(test.results))
    out = paths.plots
    per_class_ap(test.evaluation, test.truth).round(4).to_csv(out / "per_class_ap.csv", index=False)
    picture = draw_predictions(test.tensors, test.results, test.truth, model, cfg["pictures_shown"],
                               cfg["grid_columns"], out / "predictions.png")
    # test images resampled with replacement; COCOeval's matching is reused, only the accumulation is redone
    intervals = map_intervals(test.evaluation, cfg["resamples"], params["seed"])
    metrics = {**test.metrics, **intervals, "n_test_images": int(len(test.tensors["images"])),
               "n_test_objects": int(len(test.truth.getAnnIds()))}
    return metrics, [out / "per_class_ap.csv", picture, detections]


def draw_predictions(tensors, results, truth, model, shown: int, cols: int, path: Path) -> Path:
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    shown = min(shown, len(tensors["images"]))
    rows = max(1, -(-shown // cols))
    fig = Figure(figsize=(cols * 2.2, rows * 2.3), dpi=100, layout="constrained")
    by_image: dict[int, list[dict]] = {}
    for r in results:
        if r["score"] >= model.settings["draw_threshold"]:
            by_image.setdefault(r["image_id"], []).append(r)
    for k in range(shown):
        ax = fig.add_subplot(rows, cols, k + 1)
        image_id = int(tensors["image_ids"][k])
        record = truth.imgs[image_id]
        size = model.image_shape[1]
        sx, sy = size / record["width"], size / record["height"]
        image = tensors["images"][k].permute(1, 2, 0).numpy()
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=255)
        for ann in truth.loadAnns(truth.getAnnIds(imgIds=[image_id])):
            x, y, w, h = ann["bbox"]
            ax.add_patch(Rectangle((x * sx - 0.5, y * sy - 0.5), w * sx, h * sy, fill=False, edgecolor="lime", lw=1))
        for det in by_image.get(image_id, []):
            x, y, w, h = det["bbox"]
            ax.add_patch(Rectangle((x * sx - 0.5, y * sy - 0.5), w * sx, h * sy, fill=False, edgecolor="red", lw=1))
            ax.text(x * sx, y * sy - 1, f"{truth.cats[det['category_id']]['name']} {det['score']:.2f}",
                    color="red", fontsize=6)
        ax.set_axis_off()
    fig.suptitle("test images: ground truth green, detections red (class, score)")
    fig.savefig(path)
    return path
