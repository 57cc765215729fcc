"""Random crops of images, and their colours varied, for the style networks' training and the patch_cnn loss network."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnrnn.stylize.measures import grey


def random_crop(image: torch.Tensor, side: int, scales: tuple[float, float], generator: torch.Generator | None = None) -> torch.Tensor:
    """A (3, side, side) float crop in [0, 1] of a (3, H, W) image (uint8, or floats in [0, 1]): a square of
    ``side / scale`` pixels (scale drawn from ``scales``, so >1 zooms in) at a random place, resized, mirrored
    half the time."""
    h, w = image.shape[-2:]
    scale = scales[0] + (scales[1] - scales[0]) * float(torch.rand((), generator=generator))
    crop = min(h, w, max(16, round(side / scale)))
    top = int(torch.randint(h - crop + 1, (), generator=generator))
    left = int(torch.randint(w - crop + 1, (), generator=generator))
    patch = image[:, top:top + crop, left:left + crop][None]
    patch = patch.float().div(255) if patch.dtype == torch.uint8 else patch.float()
    if crop != side:
        patch = F.interpolate(patch, size=(side, side), mode="bilinear", align_corners=False, antialias=crop > side)
    if float(torch.rand((), generator=generator)) < 0.5:
        patch = patch.flip(-1)
    return patch[0].clamp(0, 1)


def colour_jitter(crop: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A (3, S, S) crop in [0, 1] with its colours varied: channels in a random order, saturation x0.5-1.5,
    contrast x0.7-1.3, brightness -0.1..+0.1. Seven training photographs (three of them grey) show a style
    network few colours; the held-out ones have others."""
    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=generator))

    crop = crop[torch.randperm(3, generator=generator)]
    luminance = grey(crop)[None]
    crop = luminance + (crop - luminance) * uniform(0.5, 1.5)
    mean = crop.mean()
    crop = (crop - mean) * uniform(0.7, 1.3) + mean + uniform(-0.1, 0.1)
    return crop.clamp(0, 1)
