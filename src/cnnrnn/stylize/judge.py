"""The learned judge: a small CNN, trained from scratch, that tells crops of each style image from crops of photographs.

Its *deception rate* (Sanakoyeu et al., ECCV 2018) grades a styled image: the share of its crops the judge assigns to
the target style. It is neither loss network (it learns its own features, from nothing), and colour alone cannot fool
it: every training crop gets random colours (:func:`cnnrnn.stylize.crops.colour_jitter`) and a share of them is made
grey, so the judge must tell a style by its texture. It sees only the *training* photographs and the part of each style
image left of ``holdout_fraction`` of its width; :func:`judge_accuracy` checks it on the held-out strips of the style
images against crops of the validation photographs. Torch only (no Lightning, no MLflow).

Classes: 0 is "a photograph", 1 + i is style i of ``styles``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnrnn.stylize.crops import colour_jitter, random_crop
from cnnrnn.stylize.features import StagedNetwork
from cnnrnn.stylize.measures import grey, resize_long_side

PHOTOGRAPH = "photograph"


class StyleJudge(nn.Module):
    """Stages of 3x3 conv + ReLU (average-pooled between), then the mean and max of the last stage -> class scores."""

    def __init__(self, styles: list[str], channels: list[int], convs_per_stage: list[int]):
        super().__init__()
        self.styles = list(styles)
        self.features = StagedNetwork(channels, convs_per_stage)
        self.head = nn.Linear(channels[-1] * 2, len(styles) + 1)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        last = self.features(crops)[-1]
        return self.head(torch.cat([last.mean(dim=(2, 3)), last.amax(dim=(2, 3))], dim=1))


def style_part(image: torch.Tensor, holdout_fraction: float, held_out: bool) -> torch.Tensor:
    """The part of a style image (3, H, W) the judge trains on (left of the held-out strip), or the strip itself."""
    cut = round(image.shape[-1] * (1 - holdout_fraction))
    return image[..., cut:] if held_out else image[..., :cut]


def greyed(crop: torch.Tensor) -> torch.Tensor:
    """(3, S, S) -> its luminance in all three channels."""
    return grey(crop).expand(3, -1, -1).clone()


def training_batch(photos: list[torch.Tensor], styles: list[torch.Tensor], cfg: dict[str, Any],
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Half the batch photograph crops, half style crops (styles in turn); random place, zoom, flip, colours, grey."""
    size, side, scales = cfg["batch_size"], cfg["crop_side"], tuple(cfg["scales"])
    labels = torch.cat([torch.zeros(size // 2, dtype=torch.long),
                        1 + torch.randint(len(styles), (size - size // 2,), generator=generator)])
    crops = []
    for label in labels.tolist():
        source = photos[int(torch.randint(len(photos), (1,), generator=generator))] if label == 0 else styles[label - 1]
        crop = colour_jitter(random_crop(source, side, scales, generator), generator)
        if float(torch.rand((), generator=generator)) < cfg["grey_fraction"]:
            crop = greyed(crop)
        crops.append(crop)
    return torch.stack(crops), labels


def at_judge_side(images: list[torch.Tensor], side: int) -> list[torch.Tensor]:
    return [resize_long_side(image, side) for image in images]


def fit_judge(cfg: dict[str, Any], styles: dict[str, torch.Tensor], photos: list[torch.Tensor],
              seed: int) -> tuple[StyleJudge, dict[str, float]]:
    """Train the judge of ``cfg`` (``stylize.evaluate.judge``) on ``photos`` (training photographs) and ``styles``
    (name -> image, (3, H, W) in [0, 1]), seeded; every image is first seen at the longer side ``cfg["side"]``."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        judge = StyleJudge(list(styles), cfg["channels"], cfg["convs_per_stage"])
    photos = at_judge_side(photos, cfg["side"])
    parts = [style_part(image, cfg["holdout_fraction"], held_out=False) for image in at_judge_side(list(styles.values()), cfg["side"])]
    optimizer = torch.optim.AdamW(judge.parameters(), lr=cfg["lr"], weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg["lr"], total_steps=cfg["steps"], pct_start=0.2)
    start = time.perf_counter()
    judge.train()
    for step in range(cfg["steps"]):
        crops, labels = training_batch(photos, parts, cfg, generator)
        loss = F.cross_entropy(judge(crops), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if (step + 1) % max(1, cfg["steps"] // 5) == 0:
            print(f"stylize: judge step {step + 1}/{cfg['steps']} loss {float(loss.detach()):.3f}", file=sys.stderr, flush=True)
    for p in judge.parameters():
        p.requires_grad_(False)
    return judge.eval(), {"judge_seconds": round(time.perf_counter() - start, 2)}


def tiles(image: torch.Tensor, side: int, stride: int) -> torch.Tensor:
    """Every ``side`` x ``side`` crop of (3, H, W) on a ``stride`` grid (the last row and column flush with the edge)."""
    h, w = image.shape[-2:]
    if min(h, w) < side:
        image = resize_long_side(image, round(max(h, w) * side / min(h, w)))
        h, w = image.shape[-2:]
    tops = sorted({*range(0, h - side + 1, stride), h - side})
    lefts = sorted({*range(0, w - side + 1, stride), w - side})
    return torch.stack([image[:, t:t + side, l:l + side] for t in tops for l in lefts])


@torch.no_grad()
def crop_verdicts(judge: StyleJudge, image: torch.Tensor, cfg: dict[str, Any]) -> torch.Tensor:
    """The judge's class for each tile of ``image`` (3, H, W) in [0, 1], seen at the judge's side."""
    crops = tiles(resize_long_side(image.clamp(0, 1), cfg["side"]), cfg["crop_side"], cfg["crop_side"] // 2)
    return judge(crops).argmax(dim=1)


def deception_rate(judge: StyleJudge, image: torch.Tensor, style: str, cfg: dict[str, Any]) -> float:
    """The share of ``image``'s tiles the judge takes for ``style`` (Sanakoyeu et al.'s deception rate)."""
    return float((crop_verdicts(judge, image, cfg) == 1 + judge.styles.index(style)).float().mean())


def judge_accuracy(judge: StyleJudge, styles: dict[str, torch.Tensor], photos: list[torch.Tensor],
                   cfg: dict[str, Any]) -> dict[str, float]:
    """On images it never saw: the share of each style's held-out strip tiles it calls that style
    (``judge_<style>_heldout_recall``), and the share of photograph tiles it calls a photograph
    (``judge_photograph_recall``; the validation photographs)."""
    out = {}
    for index, (name, image) in enumerate(styles.items()):
        strip = style_part(resize_long_side(image, cfg["side"]), cfg["holdout_fraction"], held_out=True)
        verdicts = judge(tiles(strip, cfg["crop_side"], cfg["crop_side"] // 2)).argmax(dim=1)
        out[f"judge_{name}_heldout_recall"] = round(float((verdicts == 1 + index).float().mean()), 4)
    photo_verdicts = torch.cat([crop_verdicts(judge, photo, cfg) for photo in photos])
    out["judge_photograph_recall"] = round(float((photo_verdicts == 0).float().mean()), 4)
    return out
