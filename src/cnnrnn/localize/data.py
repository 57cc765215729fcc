"""Prepare localize data: COCO format on disk (any COCO tool reads it), plus tensors for training.

Output (``data/localize/prepared/``): ``instances_<split>.json`` + ``<split>/`` images (COCO),
and ``<split>.pt`` with ``images`` (uint8, N x C x S x S, S = ``input_size``), ``boxes``
(float, N x 4, COCO [x, y, w, h] in input pixels), ``labels`` (int64, N; 0-based) and
``original_sizes`` (N x 2, width and height); ``info.json``.

Formats: ``digit_scenes`` (the embedded default: one MNIST digit on a texture), ``coco``
(a directory with ``instances_<split>.json`` and images; each image's largest box is its object),
``oxford_pet`` (Oxford-IIIT Pet head boxes from VOC XML, class = species or breed, split by seed).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from cnnrnn.errors import UserError

SPLITS = ("train", "val", "test")


def largest_objects(coco: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """image id -> its largest annotation (by box area), for images with at least one."""
    best: dict[int, dict[str, Any]] = {}
    for ann in coco["annotations"]:
        current = best.get(ann["image_id"])
        if current is None or ann["bbox"][2] * ann["bbox"][3] > current["bbox"][2] * current["bbox"][3]:
            best[ann["image_id"]] = ann
    return best


def coco_to_tensors(coco: dict[str, Any], image_dir: Path, input_size: int, channels: int) -> dict[str, Any]:
    """Decode every annotated image once, resized to (input_size, input_size); boxes scaled alike."""
    import torch
    from PIL import Image

    objects = largest_objects(coco)
    category_index = {c["id"]: i for i, c in enumerate(sorted(coco["categories"], key=lambda c: c["id"]))}
    images, boxes, labels, sizes = [], [], [], []
    for record in sorted(coco["images"], key=lambda r: r["id"]):
        ann = objects.get(record["id"])
        if ann is None:
            continue
        with Image.open(image_dir / record["file_name"]) as img:
            img = img.convert("L" if channels == 1 else "RGB").resize((input_size, input_size), Image.Resampling.BILINEAR)
            array = np.asarray(img, dtype=np.uint8)
        images.append(array[None] if channels == 1 else array.transpose(2, 0, 1))
        sx, sy = input_size / record["width"], input_size / record["height"]
        x, y, w, h = ann["bbox"]
        boxes.append([x * sx, y * sy, w * sx, h * sy])
        labels.append(category_index[ann["category_id"]])
        sizes.append([record["width"], record["height"]])
    if not images:
        raise UserError(f"{image_dir}: no annotated images to localize")
    return {"images": torch.from_numpy(np.stack(images)), "boxes": torch.tensor(boxes, dtype=torch.float32),
            "labels": torch.tensor(labels, dtype=torch.int64), "original_sizes": torch.tensor(sizes, dtype=torch.int64)}


def prepare_oxford_pet(data: dict[str, Any], raw: Path, out: Path, seed: int) -> None:
    """Extract the two Oxford-IIIT Pet archives (safely), read the head boxes of ``annotations/xmls``
    (trainval images only have them) and write COCO splits drawn by ``seed``."""
    from cnnrnn.coco.splits import write_coco_splits
    from cnnrnn.coco.voc import coco_from_voc, oxford_pet_breed
    from cnnrnn.fetching import safe_extract

    work = out / "_extracted"
    try:
        safe_extract(raw / "images.tar.gz", work / "images")
        safe_extract(raw / "annotations.tar.gz", work / "annotations")
        class_of = {"breed": oxford_pet_breed, "species": None}[data["classes_from"]]
        coco = coco_from_voc(work / "annotations" / "annotations" / "xmls", work / "images" / "images", class_of)
        fractions = {"val": data["val_fraction"], "test": data["test_fraction"]}
        write_coco_splits(coco, work / "images" / "images", out, fractions, seed)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def prepare(params: dict[str, Any], raw: Path, out: Path) -> dict[str, Any]:
    import torch

    from cnnrnn.coco.schema import load_coco

    data = params["data"]
    if data["format"] == "digit_scenes":
        from cnnrnn.digit_scenes import prepare_digit_scenes

        prepare_digit_scenes(params, raw, out)
        classes = list(data["classes"])
    elif data["format"] == "oxford_pet":
        prepare_oxford_pet(data, raw, out, params["seed"])
        classes = None
    elif data["format"] == "coco":
        for split in SPLITS:
            shutil.copy2(raw / f"instances_{split}.json", out / f"instances_{split}.json")
            shutil.copytree(raw / split, out / split)
        classes = None
    else:
        raise UserError(f"unknown localize data format {data['format']!r}; use digit_scenes, coco or oxford_pet")
    sizes = {}
    for split in SPLITS:
        coco = load_coco(out / f"instances_{split}.json", out / split)
        classes = classes or [c["name"] for c in sorted(coco["categories"], key=lambda c: c["id"])]
        tensors = coco_to_tensors(coco, out / split, data["input_size"], data["channels"])
        torch.save(tensors, out / f"{split}.pt")
        sizes[split] = int(len(tensors["labels"]))
    source = json.loads((raw / "source.json").read_text()) if (raw / "source.json").exists() else {}
    info = {"dataset": data["name"], "classes": classes, "image_shape": [data["channels"], data["input_size"], data["input_size"]],
            "sizes": sizes, "source": source}
    (out / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
