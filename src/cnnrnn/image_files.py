"""Reading a user's image file for a network that takes fixed-size squares (detect, localize).

Needs only Pillow and torch. Any size or mode is converted; a missing, empty or non-image
file raises a :class:`UserError` naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cnnrnn.errors import UserError


def read_square_image(path: Path, channels: int, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """An image file -> ((channels, size, size) floats in [0, 1], (width, height) of the file)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise UserError(f"{path}: {'empty file' if path.is_file() else 'no such file'}; pass an image file")
    try:
        with Image.open(path) as img:
            original = img.size
            img = img.convert("L" if channels == 1 else "RGB").resize((size, size), Image.Resampling.BILINEAR)
            array = np.asarray(img, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        raise UserError(f"{path} is not an image Pillow can read ({type(err).__name__})") from err
    tensor = torch.from_numpy(array)
    return (tensor[None] if channels == 1 else tensor.permute(2, 0, 1)), original
