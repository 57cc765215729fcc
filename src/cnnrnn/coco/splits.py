"""Train/val/test splits of one COCO data set, drawn by image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cnnrnn.coco.schema import write_coco


def split_coco(coco: dict[str, Any], fractions: dict[str, float], seed: int) -> dict[str, dict[str, Any]]:
    """Split one COCO dict by image into train/val/test, drawn by ``seed``."""
    ids = sorted(r["id"] for r in coco["images"])
    rng = np.random.default_rng(seed)
    rng.shuffle(ids)
    n_test, n_val = int(round(fractions["test"] * len(ids))), int(round(fractions["val"] * len(ids)))
    chosen = {"test": set(ids[:n_test]), "val": set(ids[n_test:n_test + n_val]), "train": set(ids[n_test + n_val:])}
    return {split: {**coco, "images": [r for r in coco["images"] if r["id"] in keep],
                    "annotations": [a for a in coco["annotations"] if a["image_id"] in keep]}
            for split, keep in chosen.items()}


def write_coco_splits(coco: dict[str, Any], image_dir: Path, out: Path, fractions: dict[str, float], seed: int) -> None:
    """Split ``coco`` by image (:func:`split_coco`) and write ``out/instances_<split>.json`` with
    each split's images copied to ``out/<split>/``."""
    import shutil

    for split, part in split_coco(coco, fractions, seed).items():
        (out / split).mkdir(parents=True, exist_ok=True)
        for record in part["images"]:
            shutil.copy2(image_dir / record["file_name"], out / split / record["file_name"])
        write_coco(out / f"instances_{split}.json", part["images"], part["annotations"], part["categories"])
