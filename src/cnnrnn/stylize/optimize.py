"""Gatys et al.'s method: optimize the image itself against a content loss and a Gram-matrix style loss.

Works at ``working_side`` (the longer side, e.g. 256) and upsamples the result to the content's size,
which the metrics name (``optimize_working_side``). L-BFGS over the pixels, started from the content image.
Torch only.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch
import torch.nn.functional as F

from cnnrnn.stylize.features import LossLevels, level_distances
from cnnrnn.stylize.measures import resize_long_side


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbouring pixels, per image: (B,)."""
    dh = (images[..., 1:, :] - images[..., :-1, :]).abs().mean(dim=(1, 2, 3))
    dw = (images[..., :, 1:] - images[..., :, :-1]).abs().mean(dim=(1, 2, 3))
    return dh + dw


def transfer_losses(levels: LossLevels, output: torch.Tensor, content_features: torch.Tensor,
                    content_distances: torch.Tensor, style_grams: list[torch.Tensor],
                    weights: dict[str, float]) -> dict[str, torch.Tensor]:
    """The weighted losses of a batch of outputs (B, 3, H, W): ``content``, ``style``, ``tv`` and their ``total``
    (each a mean over the batch).

    The style loss is *relative*: the output's Gram distance to the style (summed over levels) divided by that
    of the content image it came from (``content_distances``, (B, levels)). It is 1 for the unchanged photograph whatever
    the style, so one ``style_weight`` means the same for a faint greyscale texture and a bright stain. The
    content loss is the squared feature difference relative to the content features' energy.
    """
    grams, features = levels(output)
    content = F.mse_loss(features, content_features) / content_features.pow(2).mean().clamp_min(1e-12)
    distances = level_distances(grams, [g.expand_as(o) for g, o in zip(style_grams, grams)])
    style = (distances.sum(dim=1) / content_distances.sum(dim=1).clamp_min(1e-12)).mean()
    tv = total_variation(output).mean()
    total = weights["content_weight"] * content + weights["style_weight"] * style + weights["tv_weight"] * tv
    return {"total": total, "content": content, "style": style, "tv": tv}


def content_reference(levels: LossLevels, content: torch.Tensor, style_grams: list[torch.Tensor]):
    """What the losses compare an output with: the content's features and its Gram distances to the style
    per level, (B, levels); no gradient."""
    with torch.no_grad():
        grams, features = levels(content)
        return features, level_distances(grams, [g.expand_as(o) for g, o in zip(style_grams, grams)])


def optimize_image(levels: LossLevels, content: torch.Tensor, style: torch.Tensor, cfg: dict[str, Any],
                   progress: Callable[[int, float], None] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Style ``content`` (3, H, W) in [0, 1] like ``style`` (3, h, w); returns the image at the content's size and
    a record (``seconds``, ``steps``, final losses). ``cfg``: ``working_side``, ``style_side``, ``steps``,
    ``content_weight``, ``style_weight``, ``tv_weight``."""
    start = time.perf_counter()
    small = resize_long_side(content, cfg["working_side"])[None]
    if min(small.shape[-2:]) < 16:
        from cnnrnn.errors import UserError

        raise UserError(f"a {content.shape[2]}x{content.shape[1]} image is {small.shape[3]}x{small.shape[2]} at the working "
                        f"side {cfg['working_side']}: too thin for the loss network (16 pixels a side at least)")
    with torch.no_grad():
        style_grams, _ = levels(resize_long_side(style, cfg["style_side"])[None])
    content_features, content_distances = content_reference(levels, small, style_grams)
    image = small.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([image], lr=1.0, max_iter=cfg["steps"], history_size=50,
                                  tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe")
    evaluations = [0]
    last: dict[str, torch.Tensor] = {}

    def closure():
        optimizer.zero_grad()
        losses = transfer_losses(levels, image, content_features, content_distances, style_grams, cfg)
        losses["total"].backward()
        last.update(losses)
        evaluations[0] += 1
        if progress is not None:
            progress(evaluations[0], float(losses["total"]))
        return losses["total"]

    optimizer.step(closure)
    with torch.no_grad():
        result = image.detach().clamp(0, 1)
        if result.shape[-2:] != content.shape[-2:]:
            result = F.interpolate(result, size=content.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)
    record = {"seconds": round(time.perf_counter() - start, 2), "steps": evaluations[0],
              **{f"final_{k}_loss": round(float(v.detach()), 5) for k, v in last.items()}}
    return result[0], record
