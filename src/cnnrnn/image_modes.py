"""Any Pillow image as plain 8-bit RGB: what every reader of users' pictures needs (numpy and Pillow only)."""

from __future__ import annotations

import numpy as np


def rgb_array(img) -> np.ndarray:
    """A Pillow image of any mode -> (H, W, 3) uint8 RGB: EXIF rotation applied, 16-bit and float greys scaled
    to their range, transparency laid over white."""
    from PIL import Image, ImageOps

    img = ImageOps.exif_transpose(img)
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        values = np.asarray(img, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        values = (values - low) / ((high - low) or 1.0) * 255.0
        img = Image.fromarray(values.round().astype(np.uint8), mode="L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)
