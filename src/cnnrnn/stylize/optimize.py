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


def loss_weights(loss_cfg: dict[str, Any]) -> dict[str, float]:
    """The weights of the transfer losses (``colour_weight`` 0 where a config or an older model file has none)."""
    return {**{k: float(loss_cfg[k]) for k in ("content_weight", "style_weight", "tv_weight")},
            "colour_weight": float(loss_cfg.get("colour_weight", 0.0))}


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbouring pixels, per image: (B,)."""
    dh = (images[..., 1:, :] - images[..., :-1, :]).abs().mean(dim=(1, 2, 3))
    dw = (images[..., :, 1:] - images[..., :, :-1]).abs().mean(dim=(1, 2, 3))
    return dh + dw


# Colour directions of the sliced colour loss: the three channels, luminance and three opponent axes
# (the last ones make a greyscale style's colours grey, which per-channel histograms alone do not).
COLOUR_DIRECTIONS = ((1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 1), (1, -1, 0), (1, 1, -2), (1, 0, -1))


def colour_projections(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) or (3, H, W) -> each pixel's colour projected on :data:`COLOUR_DIRECTIONS` (unit length), sorted
    over the pixels: (B, D, H*W) or (D, H*W); the quantiles of the image's colour along each direction."""
    directions = torch.tensor(COLOUR_DIRECTIONS, dtype=images.dtype, device=images.device)
    directions = directions / directions.norm(dim=1, keepdim=True)
    projected = torch.einsum("...chw,dc->...dhw", images, directions)
    return projected.flatten(-2).sort(dim=-1).values


def sliced_colour_loss(output: torch.Tensor, style_colours: torch.Tensor) -> torch.Tensor:
    """Sliced Wasserstein-2 distance between the output's colours and the style's (``style_colours``: the style's
    :func:`colour_projections`, (D, M)), per image: (B,). Where the output's pixels sit does not matter, only how
    its colours are distributed: the colour half of style, apart from the texture that the Gram loss measures."""
    projected = colour_projections(output)
    n, m = projected.shape[-1], style_colours.shape[-1]
    index = torch.linspace(0, m - 1, n, device=output.device).round().long()
    return (projected - style_colours[:, index]).pow(2).mean(dim=(1, 2))


def transfer_losses(levels: LossLevels, output: torch.Tensor, content_features: torch.Tensor,
                    content_distances: torch.Tensor, style_grams: list[torch.Tensor],
                    weights: dict[str, float], style_colours: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The weighted losses of a batch of outputs (B, 3, H, W): ``content``, ``style``, ``tv``, ``colour`` and their
    ``total`` (each a mean over the batch). ``colour`` (:func:`sliced_colour_loss`) counts where
    ``weights["colour_weight"]`` is set and ``style_colours`` given; it is 0 otherwise.

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
    colour = torch.zeros((), dtype=output.dtype, device=output.device)
    if weights.get("colour_weight") and style_colours is not None:
        colour = sliced_colour_loss(output, style_colours).mean()
        total = total + weights["colour_weight"] * colour
    return {"total": total, "content": content, "style": style, "tv": tv, "colour": colour}


def fine_detail(content: torch.Tensor, small: torch.Tensor) -> torch.Tensor:
    """What the working side loses of ``content`` (B, 3, H, W): the photograph minus its ``small`` copy upsampled, i.e.
    the detail finer than the working side (a Laplacian pyramid's top bands). Added back onto an upsampled result, it
    keeps the photograph's sharp edges where the optimization, at a quarter of the pixels, could not."""
    return content - F.interpolate(small, size=content.shape[-2:], mode="bicubic", align_corners=False)


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
    ``content_weight``, ``style_weight``, ``tv_weight`` and optionally ``colour_weight`` and ``keep_detail`` (add
    the photograph's detail finer than the working side back after upsampling: :func:`fine_detail`)."""
    start = time.perf_counter()
    small = resize_long_side(content, cfg["working_side"])[None]
    if min(small.shape[-2:]) < 16:
        from cnnrnn.errors import UserError

        raise UserError(f"a {content.shape[2]}x{content.shape[1]} image is {small.shape[3]}x{small.shape[2]} at the working "
                        f"side {cfg['working_side']}: too thin for the loss network (16 pixels a side at least)")
    with torch.no_grad():
        style_small = resize_long_side(style, cfg["style_side"])
        style_grams, _ = levels(style_small[None])
        style_colours = colour_projections(style_small)
    content_features, content_distances = content_reference(levels, small, style_grams)
    image = small.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([image], lr=1.0, max_iter=cfg["steps"], history_size=50,
                                  tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe")
    evaluations = [0]
    last: dict[str, torch.Tensor] = {}

    def closure():
        optimizer.zero_grad()
        losses = transfer_losses(levels, image, content_features, content_distances, style_grams, cfg, style_colours)
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
            result = F.interpolate(result, size=content.shape[-2:], mode="bicubic", align_corners=False)
            if cfg.get("keep_detail"):
                result = result + fine_detail(content[None], small)
            result = result.clamp(0, 1)
    record = {"seconds": round(time.perf_counter() - start, 2), "steps": evaluations[0],
              **{f"final_{k}_loss": round(float(v.detach()), 5) for k, v in last.items()}}
    return result[0], record
