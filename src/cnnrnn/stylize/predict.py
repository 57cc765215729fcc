"""Style your own images: the feed-forward networks (one pass) or Gatys' optimization (``--method optimize``).

Needs only torch and Pillow (no Lightning, no MLflow). Any size and mode is read; an input whose
longer side exceeds ``predict.max_side`` is resized to it, with a note on stderr.
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnrnn.errors import UserError
from cnnrnn.model_file import read_model_file, rebuild
from cnnrnn.stylize.features import FeatureNetwork, LossLevels, StagedNetwork
from cnnrnn.stylize.network import build_style_network, grey_output_styles

RETRAIN = "dvc repro stylize_train"


def image_from_file(path: Path, max_side: int) -> torch.Tensor:
    """An image file -> (3, H, W) floats in [0, 1]; longer than ``max_side`` -> resized, with a note."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise UserError(f"{path}: {'empty file' if path.is_file() else 'no such file'}; pass an image file")
    try:
        with Image.open(path) as img:
            return image_from_pillow(img, max_side, str(path))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        raise UserError(f"{path} is not an image Pillow can read ({type(err).__name__})") from err


MIN_SIDE = 16  # the style network needs a few pixels on each side


def image_from_pillow(img, max_side: int, name: str = "image") -> torch.Tensor:
    """A Pillow image of any mode and size -> (3, H, W) floats in [0, 1]; longer than ``max_side`` -> resized to it
    (with a note); a side under 16 pixels -> a :class:`UserError`."""
    from PIL import Image

    from cnnrnn.image_modes import rgb_array

    if max(img.size) > max_side:
        scale = max_side / max(img.size)
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        print(f"cnnrnn: note: {name} is {img.width}x{img.height}; styled at {size[0]}x{size[1]} "
              f"(predict.max_side {max_side})", file=sys.stderr)
        img.draft("RGB", size)  # JPEG: decode at a reduced size first
        img = img.resize(size, Image.Resampling.LANCZOS) if img.mode not in ("I;16", "I;16B", "I;16L") else img.resize(size)
    if min(img.size) < MIN_SIDE:
        raise UserError(f"{name} is {img.width}x{img.height} pixels: too small to style (each side needs at least "
                        f"{MIN_SIDE}, after resizing to at most {max_side})")
    return torch.from_numpy(rgb_array(img).astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()


def image_from_bytes(data: bytes, max_side: int, name: str = "image") -> torch.Tensor:
    """Encoded image bytes (PNG, JPEG, ...) -> (3, H, W) floats; not an image -> a :class:`UserError`."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            return image_from_pillow(img, max_side, name)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        raise UserError(f"{name} is not an image Pillow can read ({type(err).__name__})") from err


def encode(image: torch.Tensor, format: str = "PNG") -> bytes:
    """(3, H, W) in [0, 1] -> the encoded file (PNG by default)."""
    from PIL import Image

    array = (image.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=format)
    return buffer.getvalue()


def output_path(output: Path | None, path: Path, style: str) -> tuple[Path, str]:
    """Where the styled image goes, and its format: ``-o`` (a file, or a directory to write into), else
    ``<name>-<style>.png`` here; the format follows the suffix (PNG where Pillow knows none)."""
    from PIL import Image

    default = f"{Path(path).stem}-{style}.png"
    target = Path(output) if output else Path(default)
    if target.is_dir():
        target = target / default
    Image.init()
    return target, Image.EXTENSION.get(target.suffix.lower(), "PNG")


class LoadedStylizer:
    """``styles`` (names), ``networks`` (name -> feed-forward network), ``style_images`` (name -> (3, H, W) floats)."""

    def __init__(self, path: Path, data_dir: Path | None = None):
        """``data_dir``: where a pretrained loss network's weights lie for ``--method optimize`` (default:
        data/stylize of this project)."""
        saved = read_model_file(path, "stylize", RETRAIN)
        self.path = Path(path)
        self.data_dir = data_dir
        self.saved = saved
        self.styles: list[str] = list(saved["styles"])
        self.settings: dict = saved["predict"]
        grey_styles = grey_output_styles(saved["model_cfg"], self.styles, saved["style_images"])  # as in training
        self.networks = {name: rebuild(path, {"state_dict": saved["state_dicts"][name], "grey": name in grey_styles, **saved},
                                       lambda s: build_style_network(s["model_cfg"], s["grey"]), RETRAIN)
                         for name in self.styles}
        self.style_images = {name: img.float().div(255) for name, img in zip(self.styles, saved["style_images"])}
        self.style_images.update({name: img.float().div(255) for name, img in (saved.get("other_styles") or {}).items()})
        self._levels: LossLevels | None = None

    def check_style(self, style: str | None, method: str = "feedforward") -> str:
        """``style`` (default: the first with a network), checked: a feed-forward network for it, or for ``optimize``
        its image."""
        style = style or self.styles[0]
        known = self.networks if method == "feedforward" else self.style_images
        if style not in known:
            others = sorted(set(self.style_images) - set(self.networks))
            hint = f" ({', '.join(others)}: --method optimize only; stylize.train.styles trains networks)" if others else ""
            raise UserError(f"no {'network for the ' if method == 'feedforward' else ''}style {style!r} in {self.path}; "
                            f"choose one of: {', '.join(known)}{hint if method == 'feedforward' else ''}")
        return style

    @torch.no_grad()
    def stylize(self, image: torch.Tensor, style: str | None = None) -> torch.Tensor:
        """(3, H, W) in [0, 1] -> the feed-forward network's styled image, same size."""
        return self.networks[self.check_style(style)](image[None])[0].clamp(0, 1)

    def loss_levels(self) -> LossLevels:
        """The loss network the model was trained with (for ``--method optimize``)."""
        if self._levels is None:
            from cnnrnn.stylize.loss_network import build_loss_network, loss_levels

            cfg = self.saved["loss_cfg"]
            if cfg["network"] == "patch_cnn":  # the fitted stages, seen as stylize.loss says (not as the feed-forward loss)
                network: FeatureNetwork = rebuild(self.path, {"state_dict": self.saved["loss_network_state"]},
                                                  lambda s: StagedNetwork(cfg["channels"], cfg["convs_per_stage"]), RETRAIN)
                self._levels = loss_levels(network.freeze(), cfg)
            else:
                from cnnrnn.config import project_root
                from cnnrnn.stylize.loss_network import weights_path

                weights = weights_path(cfg, self.data_dir or project_root() / "data" / "stylize")
                if weights is not None and not weights.is_file():
                    stage = "prepare" if weights.parent.name == "prepared" else "fetch"
                    raise UserError(f"--method optimize with {cfg['network']} needs {weights}; `cnnrnn {stage} stylize` "
                                    f"writes it (or `dvc pull`)")
                self._levels, _ = build_loss_network(cfg, weights_file=weights)
        return self._levels

    def optimize(self, image: torch.Tensor, style: str | None = None, steps: int | None = None) -> tuple[torch.Tensor, dict]:
        from cnnrnn.stylize.optimize import loss_weights, optimize_image

        style = self.check_style(style, "optimize")
        cfg = {**self.settings["optimize"], **loss_weights(self.saved["loss_cfg"])}
        if steps is not None:
            cfg["steps"] = steps
        return optimize_image(self.loss_levels(), image, self.style_images[style], cfg)


def describe(model: LoadedStylizer, path: Path, top: int | None = None, as_json: bool = True,
             output: Path | None = None, style: str | None = None, method: str = "feedforward",
             steps: int | None = None) -> str:
    """Style one image file and write it (``output``, else ``<name>-<style>.png`` here); one JSON line about it."""
    if method not in ("feedforward", "optimize"):
        raise UserError(f"--method {method!r}: choose feedforward or optimize")
    style = model.check_style(style, method)
    image = image_from_file(path, model.settings["max_side"])
    start = time.perf_counter()
    if method == "optimize":
        styled, record = model.optimize(image, style, steps)
    elif method == "feedforward":
        styled, record = model.stylize(image, style), {}
    else:
        raise UserError(f"--method {method!r}: choose feedforward or optimize")
    seconds = time.perf_counter() - start
    output, image_format = output_path(output, path, style)
    from cnnrnn.atomic import write_bytes_atomically

    try:
        write_bytes_atomically(output, encode(styled, image_format))
    except OSError as err:
        raise UserError(f"cannot write {output} ({err.strerror or err}); choose another -o") from err
    result = {"input": str(path), "style": style, "method": method, "output": str(output),
              "size": [int(image.shape[2]), int(image.shape[1])], "seconds": round(seconds, 3)}
    if record:
        result["steps"] = record["steps"]
        result["working_side"] = model.settings["optimize"]["working_side"]
    return json.dumps(result)


def load(model_dir: Path, data_dir: Path | None = None) -> LoadedStylizer:
    return LoadedStylizer(Path(model_dir) / "model.pt", data_dir)


def predict_frame(model: LoadedStylizer, frame) -> Any:
    """MLflow pyfunc: a DataFrame with ``path`` (image files) or ``image`` (encoded PNG/JPEG bytes), and optionally
    ``style`` -> a DataFrame of ``style``, ``image`` (the styled image, PNG bytes), ``width``, ``height``."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame) or not ({"path", "image"} & set(frame.columns)):
        raise UserError("stylize model input: a DataFrame with a 'path' column of image files or an 'image' column "
                        "of encoded images (bytes, or base64 text), and optionally 'style'")
    import base64

    def given(row, column):
        value = row.get(column) if column in frame.columns else None
        return None if value is None or (not isinstance(value, (bytes, bytearray, str)) and pd.isna(value)) else value

    rows = []
    for number, (_, row) in enumerate(frame.iterrows()):
        data = given(row, "image")
        if data is not None:
            if isinstance(data, str):  # JSON clients send bytes as base64 text
                try:
                    data = base64.b64decode(data, validate=True)
                except ValueError as err:
                    raise UserError(f"row {number}: 'image' text is not base64-encoded image bytes") from err
            image = image_from_bytes(bytes(data), model.settings["max_side"], f"row {number}'s image")
        elif given(row, "path") is not None:
            image = image_from_file(Path(row["path"]), model.settings["max_side"])
        else:
            raise UserError(f"row {number} has neither an 'image' nor a 'path'")
        style = model.check_style(given(row, "style"))
        styled = model.stylize(image, style)
        rows.append({"style": style, "image": encode(styled), "width": int(styled.shape[2]), "height": int(styled.shape[1])})
    return pd.DataFrame(rows)
