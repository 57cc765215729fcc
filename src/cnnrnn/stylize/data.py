"""Prepare stylize data: content photographs split by whole image, and the style images.

Output (``data/stylize/prepared/``): ``{train,val,test}.pt`` with ``names`` and ``images`` (a list of
uint8 (3, H, W) tensors, each photograph with its longer side ``data.side``), ``styles.pt`` (the same
for the style images, at the same side, a painting's frame trimmed), ``vgg16.pt`` (the VGG-16 loss network,
converted from the fetched Keras file) and ``info.json``. A photograph belongs to exactly one split:
training crops are cut from the training photographs only, so no pixel of a validation or test
image is ever seen in training. ``extra_training`` images (textures) are only for fitting the
``patch_cnn`` loss network, never content.

Formats: ``images`` (named files in raw/, the embedded default and a local directory), ``coco_content``
(content photographs taken from a COCO subset fetched like detect's, split by ``seed``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from cnnrnn.errors import UserError

SPLITS = ("train", "val", "test")
VGG16_FILE = "vgg16.pt"  # the VGG-16 loss network's weights as a plain state dict, in prepared/


def convert_vgg16(h5_path: Path, out: Path) -> None:
    """The fetched Keras weights file -> ``prepared/vgg16.pt`` (:func:`cnnrnn.stylize.vgg16.convert_keras_vgg16`)."""
    from cnnrnn.stylize.vgg16 import convert_keras_vgg16

    if not h5_path.is_file():
        raise UserError(f"{h5_path}: no such file; `cnnrnn fetch stylize` fetches it (stylize.data.vgg16_weights)")
    convert_keras_vgg16(h5_path, out)


def read_image(path: Path, side: int | None, trim: int = 0):
    """An image file -> uint8 tensor (3, H, W), RGB, ``trim`` pixels cut from each edge first (a painting's frame),
    then its longer side ``side`` (None: as it is)."""
    import torch
    from PIL import Image, UnidentifiedImageError

    if not path.is_file() or path.stat().st_size == 0:
        raise UserError(f"{path}: {'empty file' if path.is_file() else 'no such file'}; fetch again (`cnnrnn fetch stylize`)")
    try:
        with Image.open(path) as img:
            from cnnrnn.image_modes import rgb_array

            img = Image.fromarray(rgb_array(img))
            if trim:
                if min(img.size) <= 2 * trim:
                    raise UserError(f"{path} is {img.width}x{img.height}: stylize.data.trim {trim} leaves nothing")
                img = img.crop((trim, trim, img.width - trim, img.height - trim))
            if side is not None:
                scale = side / max(img.size)
                img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                                 Image.Resampling.LANCZOS)
            array = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        raise UserError(f"{path} is not an image Pillow can read ({type(err).__name__})") from err
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def complete_fetch(params: dict[str, Any], raw: Path) -> None:
    """After the generic fetch: for ``coco_content``, choose the COCO subset and download only its images
    (detect's :func:`~cnnrnn.coco.subset.fetch_coco_subset`) into ``raw/subset/images/``."""
    data = params["data"]
    if data["format"] != "coco_content":
        return
    from cnnrnn.coco.subset import fetch_coco_subset

    subset = data["subset"]
    fetch_coco_subset(raw / "annotations_trainval2017.zip", subset["member"], list(subset["categories"]),
                      subset["max_images"], params["seed"], raw / "subset", image_base_url=subset["image_base_url"],
                      workers=subset["workers"])


def content_splits(data: dict[str, Any], raw: Path, seed: int) -> dict[str, list[str]]:
    """split -> file names of the content photographs in ``raw``."""
    if data["format"] == "images":
        splits = {split: list(data["content"][split]) for split in SPLITS}
    elif data["format"] == "coco_content":
        names = sorted(p.name for p in (raw / "subset" / "images").glob("*.jpg"))
        rng = np.random.default_rng(seed)
        order = [names[i] for i in rng.permutation(len(names))]
        n_val, n_test = data["content"]["val_count"], data["content"]["test_count"]
        splits = {"val": order[:n_val], "test": order[n_val:n_val + n_test], "train": order[n_val + n_test:]}
        splits = {k: [f"subset/images/{n}" for n in v] for k, v in splits.items()}
    else:
        raise UserError(f"unknown stylize data format {data['format']!r}; use images or coco_content")
    seen: dict[str, str] = {}
    for split, names in splits.items():
        if not names:
            raise UserError(f"stylize.data: the {split} split has no content images; list some (conf/stylize/data)")
        for name in names:
            if name in seen:
                raise UserError(f"stylize.data: {name} is in both {seen[name]} and {split}; a photograph belongs to one split")
            seen[name] = split
    return splits


def prepare(params: dict[str, Any], raw: Path, out: Path) -> dict[str, Any]:
    import torch

    data = params["data"]
    side = data["side"]
    splits = content_splits(data, raw, params["seed"])
    sizes = {}
    for split, names in splits.items():
        images = [read_image(raw / name, side) for name in names]
        torch.save({"names": [Path(n).stem for n in names], "images": images}, out / f"{split}.pt")
        sizes[split] = len(images)
    styles = dict(data["styles"])
    trim = dict(data.get("trim") or {})
    torch.save({"names": list(styles), "images": [read_image(raw / f, side, trim.get(f, 0)) for f in styles.values()]},
               out / "styles.pt")
    extra = list(data.get("extra_training") or [])
    torch.save({"names": [Path(n).stem for n in extra], "images": [read_image(raw / f, side) for f in extra]},
               out / "extra_training.pt")
    if data.get("vgg16_weights"):
        convert_vgg16(raw / data["vgg16_weights"], out / VGG16_FILE)
    source = json.loads((raw / "source.json").read_text()) if (raw / "source.json").exists() else {}
    info = {"dataset": data["name"], "side": side, "content": {k: [Path(n).stem for n in v] for k, v in splits.items()},
            "styles": list(styles), "vgg16": VGG16_FILE if data.get("vgg16_weights") else None,
            "extra_training": [Path(n).stem for n in extra], "sizes": sizes, "source": source}
    (out / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
