"""Classify real image files: any size or mode is converted to what the network was trained on.

Needs only torch and Pillow (no Lightning, no MLflow), so ``cnnrnn predict classify`` starts fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnrnn.classify.network import build_classifier
from cnnrnn.errors import UserError
from cnnrnn.image_models import LoadedImageModel


class LoadedClassifier(LoadedImageModel):
    """A trained classifier and the facts needed to feed it: classes, input shape, background (``style``)."""

    def __init__(self, path: Path):
        super().__init__(path, "classify", build_classifier)
        self.style: dict = self.settings

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Floats in [0, 1], (B, C, H, W) -> class probabilities (B, num_classes)."""
        return torch.softmax(self.network(images), dim=1)

    def image_tensor(self, path: Path) -> torch.Tensor:
        """One image file -> (C, H, W) float tensor in [0, 1] shaped like the training images."""
        from PIL import Image, UnidentifiedImageError

        path = Path(path)
        if not path.exists():
            raise UserError(f"{path}: no such file")
        if path.is_dir():
            raise UserError(f"{path} is a directory; pass image files")
        if path.stat().st_size == 0:
            raise UserError(f"{path} is empty; pass an image file (PNG, JPEG, ...)")
        try:
            with Image.open(path) as img:
                img.draft("RGB", (4 * self.image_shape[2], 4 * self.image_shape[1]))  # JPEG: decode small
                img.load()
                return self.pil_to_tensor(img)
        except Image.DecompressionBombError as err:
            raise UserError(f"{path} is too large to decode safely ({err}); downscale it first") from err
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            raise UserError(f"{path} is not an image Pillow can read ({type(err).__name__}); pass a PNG, JPEG, BMP, ... file") from err

    def pil_to_tensor(self, img) -> torch.Tensor:
        from PIL import Image, ImageOps

        channels, height, width = self.image_shape
        img = ImageOps.exif_transpose(img)
        if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit / float: scale by the image's own range
            values = np.asarray(img, dtype=np.float32)
            span = float(values.max() - values.min()) or 1.0
            img = Image.fromarray(((values - values.min()) / span * 255).astype(np.uint8), "L")
        if img.mode in ("RGBA", "LA", "P", "PA"):  # transparent parts become white paper
            img = img.convert("RGBA")
            paper = Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = Image.alpha_composite(paper, img)
        img = img.convert("L" if channels == 1 else "RGB")
        array = np.asarray(img, dtype=np.float32) / 255.0
        if self.style["light_on_dark"]:
            # Trained on light strokes on black (MNIST style): a dark-on-light photo is inverted,
            # stretched to the full range, cropped to the object and scaled to the size objects had in training.
            border = np.concatenate([array[0].ravel(), array[-1].ravel(), array[:, 0].ravel(), array[:, -1].ravel()])
            if border.mean() > 0.5:
                array, border = 1.0 - array, 1.0 - border
            array = np.clip((array - np.median(border)) / max(float(array.max() - np.median(border)), 1e-6), 0, 1)
            array = _crop_to_content(array, self.style["ink_threshold"])
        fraction = self.style["content_fraction"]
        target = (int(round(height * fraction)), int(round(width * fraction)))
        fitted = _fit(array, target, channels)
        canvas = np.zeros((height, width) if channels == 1 else (height, width, 3), dtype=np.float32)
        top, left = (height - fitted.shape[0]) // 2, (width - fitted.shape[1]) // 2
        canvas[top:top + fitted.shape[0], left:left + fitted.shape[1]] = fitted
        tensor = torch.from_numpy(canvas)
        return tensor[None] if channels == 1 else tensor.permute(2, 0, 1)

    def top_k(self, paths: list[Path], k: int | None = None) -> list[list[tuple[str, float]]]:
        """The ``k`` (default: ``predict.top_k`` of the config) most likely classes per image file."""
        k = k or self.style["top_k"]
        batch = torch.stack([self.image_tensor(p) for p in paths])
        probs = self.probabilities(batch)
        top = probs.topk(min(k, probs.shape[1]), dim=1)
        return [[(self.classes[i], float(p)) for p, i in zip(ps.tolist(), idx.tolist())]
                for ps, idx in zip(top.values, top.indices)]


def _crop_to_content(array: np.ndarray, threshold: float) -> np.ndarray:
    mask = array > threshold
    if not mask.any():
        return array
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return array[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _fit(array: np.ndarray, target: tuple[int, int], channels: int) -> np.ndarray:
    """Resize keeping the aspect ratio so the image fits in ``target`` (h, w)."""
    from PIL import Image

    h, w = array.shape[:2]
    scale = min(target[0] / h, target[1] / w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    img = Image.fromarray((array * 255).astype(np.uint8), "L" if channels == 1 else "RGB")
    return np.asarray(img.resize(size, Image.Resampling.LANCZOS), dtype=np.float32) / 255.0


def describe(model: LoadedClassifier, path: Path, top: int | None = None, as_json: bool = False,
             output: Path | None = None) -> str:
    """One line for ``cnnrnn predict classify``: the top classes of one image file."""
    import json

    (best,) = model.top_k([path], k=top)
    if as_json:
        return json.dumps({"input": str(path), "top": [{"class": c, "probability": round(p, 4)} for c, p in best]})
    return f"{path}: " + ", ".join(f"{c} ({p:.3f})" for c, p in best)


def load(model_dir: Path) -> LoadedClassifier:
    return LoadedClassifier(Path(model_dir) / "model.pt")


def predict_frame(model: LoadedClassifier, frame) -> Any:
    """MLflow pyfunc input -> output.

    Input: a pandas DataFrame with a ``path`` column of image files, or a numpy array of
    images (N, H, W) / (N, H, W, C) / (N, C, H, W) in 0-255. Output: a DataFrame with the
    top-k (``predict.top_k``) ``label_1..k`` and ``probability_1..k``.
    """
    import pandas as pd

    if isinstance(frame, pd.DataFrame):
        if "path" not in frame.columns:
            raise UserError("classify model input: a DataFrame needs a 'path' column of image files")
        batch = torch.stack([model.image_tensor(Path(p)) for p in frame["path"]])
    else:
        from PIL import Image

        array = np.asarray(frame)
        if array.ndim == 4 and array.shape[1] in (1, 3) and array.shape[-1] not in (1, 3):
            array = array.transpose(0, 2, 3, 1)
        if array.ndim == 4 and array.shape[-1] == 1:
            array = array[..., 0]
        batch = torch.stack([model.pil_to_tensor(Image.fromarray(a.astype(np.uint8))) for a in array])
    probs = model.probabilities(batch)
    top = probs.topk(min(model.style["top_k"], probs.shape[1]), dim=1)
    out = {}
    for rank in range(top.indices.shape[1]):
        out[f"label_{rank + 1}"] = [model.classes[i] for i in top.indices[:, rank].tolist()]
        out[f"probability_{rank + 1}"] = top.values[:, rank].tolist()
    return pd.DataFrame(out)
