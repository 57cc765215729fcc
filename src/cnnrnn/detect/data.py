"""Prepare detect data: always COCO format on disk, plus tensors for training.

Output (``data/detect/prepared/``): ``instances_<split>.json`` + ``<split>/`` images (COCO,
readable by any COCO tool), and ``<split>.pt`` with ``images`` (uint8, N x C x S x S, S =
``input_size``), ``boxes`` (float, N x M x 4, COCO [x, y, w, h] in input pixels, padded),
``labels`` (int64, N x M, 0-based, -1 = padding), ``image_ids`` and ``original_sizes``
(N x 2, width and height); ``info.json``.

Formats: ``digit_scenes`` (embedded default: several MNIST digits on a texture), ``coco``
(a local directory with ``instances_<split>.json`` and ``<split>/`` images), ``coco_subset``
(COCO 2017 val annotations -> a subset by category, images downloaded by the fetch stage,
split by seed).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from cnnrnn.errors import UserError

SPLITS = ("train", "val", "test")


def complete_fetch(params: dict[str, Any], raw: Path) -> None:
    """After the generic fetch: for ``coco_subset``, select the subset and download only its images."""
    data = params["data"]
    if data["format"] != "coco_subset":
        return
    from cnnrnn.coco.subset import fetch_coco_subset

    subset = data["subset"]
    fetch_coco_subset(raw / next(iter(data["source"]["files"])), subset["member"], list(subset["categories"]),
                      subset["max_images"], params["seed"], raw / "subset", image_base_url=subset["image_base_url"],
                      workers=subset["workers"])


def coco_to_tensors(coco: dict[str, Any], image_dir: Path, input_size: int, channels: int) -> dict[str, Any]:
    """Decode every image once, resized to (input_size, input_size), boxes scaled alike and padded."""
    import torch
    from PIL import Image

    category_index = {c["id"]: i for i, c in enumerate(sorted(coco["categories"], key=lambda c: c["id"]))}
    per_image: dict[int, list[dict]] = {}
    for ann in coco["annotations"]:
        if not ann.get("iscrowd", 0):
            per_image.setdefault(ann["image_id"], []).append(ann)
    records = sorted(coco["images"], key=lambda r: r["id"])
    most = max((len(v) for v in per_image.values()), default=1)
    images = np.zeros((len(records), channels, input_size, input_size), dtype=np.uint8)
    boxes = np.zeros((len(records), most, 4), dtype=np.float32)
    labels = np.full((len(records), most), -1, dtype=np.int64)
    for row, record in enumerate(records):
        with Image.open(image_dir / record["file_name"]) as img:
            img = img.convert("L" if channels == 1 else "RGB").resize((input_size, input_size), Image.Resampling.BILINEAR)
            array = np.asarray(img, dtype=np.uint8)
        images[row] = array[None] if channels == 1 else array.transpose(2, 0, 1)
        sx, sy = input_size / record["width"], input_size / record["height"]
        for j, ann in enumerate(per_image.get(record["id"], [])):
            x, y, w, h = ann["bbox"]
            boxes[row, j] = [x * sx, y * sy, w * sx, h * sy]
            labels[row, j] = category_index[ann["category_id"]]
    return {"images": torch.from_numpy(images), "boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(labels),
            "image_ids": torch.tensor([r["id"] for r in records]),
            "original_sizes": torch.tensor([[r["width"], r["height"]] for r in records])}


def split_categories(prepared: Path, splits: tuple[str, ...] = SPLITS) -> dict[int, str]:
    """The categories, {id: name}, that every ``prepared/instances_<split>.json`` lists.

    The labels are numbered by each split's own categories, so splits that list different ones
    would train and test on different labels: a :class:`UserError` names the two files and the
    categories that differ, before anything is trained.
    """
    listed = {}
    for split in splits:
        path = Path(prepared) / f"instances_{split}.json"
        listed[path] = {c["id"]: c["name"] for c in json.loads(path.read_text())["categories"]}
    (first, reference), *others = listed.items()
    for path, categories in others:
        if categories != reference:
            only_here = sorted(set(categories.items()) - set(reference.items()))
            only_first = sorted(set(reference.items()) - set(categories.items()))
            raise UserError(f"{path} and {first} list different categories (id, name): only in {path.name}: "
                            f"{only_here or 'none'}; only in {first.name}: {only_first or 'none'}. Every split must "
                            f"list the same category ids and names; fix the data set and rerun `dvc repro detect_prepare`")
    return reference


def prepare(params: dict[str, Any], raw: Path, out: Path) -> dict[str, Any]:
    import torch

    from cnnrnn.coco.schema import load_coco
    from cnnrnn.coco.splits import write_coco_splits

    data = params["data"]
    if data["format"] == "digit_scenes":
        from cnnrnn.digit_scenes import prepare_digit_scenes

        prepare_digit_scenes(params, raw, out)
    elif data["format"] == "coco":
        for split in SPLITS:
            shutil.copy2(raw / f"instances_{split}.json", out / f"instances_{split}.json")
            shutil.copytree(raw / split, out / split)
    elif data["format"] == "coco_subset":
        subset = load_coco(raw / "subset" / "instances.json", raw / "subset" / "images")
        fractions = {"val": data["val_fraction"], "test": data["test_fraction"]}
        write_coco_splits(subset, raw / "subset" / "images", out, fractions, params["seed"])
    else:
        raise UserError(f"unknown detect data format {data['format']!r}; use digit_scenes, coco or coco_subset")
    split_categories(out)
    sizes, classes = {}, None
    for split in SPLITS:
        coco = load_coco(out / f"instances_{split}.json", out / split)
        classes = classes or [c["name"] for c in sorted(coco["categories"], key=lambda c: c["id"])]
        tensors = coco_to_tensors(coco, out / split, data["input_size"], data["channels"])
        torch.save(tensors, out / f"{split}.pt")
        sizes[split] = {"images": int(len(tensors["images"])), "objects": int((tensors["labels"] >= 0).sum())}
    source = json.loads((raw / "source.json").read_text()) if (raw / "source.json").exists() else {}
    info = {"dataset": data["name"], "classes": classes, "image_shape": [data["channels"], data["input_size"], data["input_size"]],
            "sizes": sizes, "source": source}
    (out / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
