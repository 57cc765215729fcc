"""Detect objects in real image files: boxes (class, score, x, y, w, h) in the file's own pixels.

Needs only torch and Pillow (no Lightning, no MLflow).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from cnnrnn.detect.centernet import decode
from cnnrnn.detect.network import build_network
from cnnrnn.errors import UserError
from cnnrnn.image_models import LoadedImageModel


class LoadedDetector(LoadedImageModel):
    def __init__(self, path: Path):
        super().__init__(path, "detect", lambda cfg, channels, classes, size, mean, std:
                         build_network(cfg, channels, classes, mean, std))

    @torch.no_grad()
    def detect(self, images: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(B, C, S, S) floats in [0, 1] -> per image (boxes (n, 4) COCO input pixels, scores (n,), labels (n,))."""
        s = self.settings
        return decode(self.network(images), s["max_detections"], s["score_threshold"], self.network.stride, s["nms_iou"])

    def detect_file(self, path: Path) -> list[dict[str, Any]]:
        image, (width, height) = self.read_image(path)
        (boxes, scores, labels), = self.detect(image[None])
        size = self.image_shape[1]
        scale = torch.tensor([width / size, height / size, width / size, height / size])
        return [{"class": self.classes[int(l)], "score": round(float(s), 4), "x": round(float(b[0]), 1),
                 "y": round(float(b[1]), 1), "w": round(float(b[2]), 1), "h": round(float(b[3]), 1)}
                for b, s, l in zip(boxes * scale, scores, labels)]


def load(model_dir: Path) -> LoadedDetector:
    return LoadedDetector(Path(model_dir) / "model.pt")


def describe(model: LoadedDetector, path: Path, top: int | None = None, as_json: bool = True,
             output: Path | None = None) -> str:
    """One JSON line for ``cnnrnn predict detect``: the boxes scoring at least ``draw_threshold``
    in one image file; with ``output``, also a copy of the image with the boxes drawn."""
    found = [b for b in model.detect_file(path) if b["score"] >= model.settings["draw_threshold"]][:top]
    if output is not None:
        draw(path, found, output)
    return json.dumps({"input": str(path), "boxes": found})


def draw(path: Path, found: list[dict[str, Any]], out: Path) -> Path:
    """Draw the boxes of ``found`` on the image file ``path``, saved as ``out``."""
    from PIL import Image, ImageDraw

    with Image.open(path) as img:
        canvas = img.convert("RGB")
    pen = ImageDraw.Draw(canvas)
    for box in found:
        pen.rectangle([box["x"], box["y"], box["x"] + box["w"], box["y"] + box["h"]], outline=(255, 40, 40), width=2)
        pen.text((box["x"] + 2, box["y"] + 1), f"{box['class']} {box['score']:.2f}", fill=(255, 255, 0))
    canvas.save(out)
    return out


def predict_frame(model: LoadedDetector, frame) -> Any:
    """MLflow pyfunc: a DataFrame with a ``path`` column -> one row per box (path, class, score, x, y, w, h)."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame) or "path" not in frame.columns:
        raise UserError("detect model input: a DataFrame with a 'path' column of image files")
    rows = [{"path": p, **box} for p in frame["path"] for box in model.detect_file(Path(p))]
    return pd.DataFrame(rows, columns=["path", "class", "score", "x", "y", "w", "h"])
