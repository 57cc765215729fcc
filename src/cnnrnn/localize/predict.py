"""Localize the object in real image files: its class and its box in the file's own pixels.

Needs only torch and Pillow (no Lightning, no MLflow).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from cnnrnn.errors import UserError
from cnnrnn.image_models import LoadedImageModel
from cnnrnn.localize.network import Localizer, cxcywh_to_xywh


class LoadedLocalizer(LoadedImageModel):
    def __init__(self, path: Path):
        super().__init__(path, "localize", Localizer)

    @torch.no_grad()
    def localize(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, C, S, S) floats in [0, 1] -> probabilities (B, K), best class (B,), boxes (B, 4) COCO in input pixels."""
        logits, boxes = self.network(images)
        probs = torch.softmax(logits, 1)
        return probs, probs.argmax(1), cxcywh_to_xywh(boxes, self.image_shape[1])

    def predict_files(self, paths: list[Path]) -> list[dict[str, Any]]:
        results = []
        for path in paths:
            image, (width, height) = self.read_image(path)
            probs, best, boxes = self.localize(image[None])
            size = self.image_shape[1]
            x, y, w, h = boxes[0].tolist()
            sx, sy = width / size, height / size
            results.append({"input": str(path), "class": self.classes[int(best[0])],
                            "probability": round(float(probs[0, best[0]]), 4),
                            "box": [round(x * sx, 1), round(y * sy, 1), round(w * sx, 1), round(h * sy, 1)]})
        return results


def describe(model: LoadedLocalizer, path: Path, top: int | None = None, as_json: bool = True,
             output: Path | None = None) -> str:
    """One JSON line for ``cnnrnn predict localize``: class, probability and box of one image file."""
    import json

    return json.dumps(model.predict_files([path])[0])


def load(model_dir: Path) -> LoadedLocalizer:
    return LoadedLocalizer(Path(model_dir) / "model.pt")


def predict_frame(model: LoadedLocalizer, frame) -> Any:
    """MLflow pyfunc: a DataFrame with a ``path`` column -> DataFrame of class, probability, x, y, w, h."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame) or "path" not in frame.columns:
        raise UserError("localize model input: a DataFrame with a 'path' column of image files")
    rows = model.predict_files([Path(p) for p in frame["path"]])
    return pd.DataFrame([{"class": r["class"], "probability": r["probability"], "x": r["box"][0], "y": r["box"][1],
                          "w": r["box"][2], "h": r["box"][3]} for r in rows])
