"""Evaluate both methods on held-out photographs: style taken, content kept, colours, and time.

:func:`evaluate` styles every test photograph with every style's feed-forward network, and a fixed small
set (``evaluate.optimize_images`` x ``evaluate.optimize_styles``) with Gatys' optimization, and grades
each output with :mod:`cnnrnn.stylize.measures` using the fixed evaluation network (not the loss network
either method optimized). Metrics: per method the mean ``style_loss_ratio``, ``content_ssim`` and
``color_distance``, every (photograph, style) figure beside them, ``seconds_per_image_512``, and the
colour-only reference (each test photograph given only the style's colour histogram).
:func:`validate` computes the same figures on the validation photographs, and writes nothing.

Files (``plots/stylize/``): ``per_image.csv`` and ``grid.png`` (content, style and each method's output).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from cnnrnn.paths import AppPaths
from cnnrnn.stylize.features import evaluation_network
from cnnrnn.stylize.measures import color_distance, content_ssim, match_histograms, style_loss_ratio
from cnnrnn.stylize.predict import LoadedStylizer, load

MEASURES = ("style_loss_ratio", "content_ssim", "color_distance")


def grade(network, output: torch.Tensor, content: torch.Tensor, style: torch.Tensor, side: int) -> dict[str, float]:
    return {"style_loss_ratio": round(style_loss_ratio(network, output, content, style, side), 4),
            "content_ssim": round(content_ssim(output, content), 4),
            "color_distance": round(color_distance(output, style), 4)}


def photographs(paths: AppPaths, split: str) -> dict[str, torch.Tensor]:
    saved = torch.load(paths.prepared / f"{split}.pt")
    return {name: image.float().div(255) for name, image in zip(saved["names"], saved["images"])}


def stylize_split(model: LoadedStylizer, cfg: dict[str, Any], images: dict[str, torch.Tensor],
                  optimize_on: list[tuple[str, str]]) -> tuple[pd.DataFrame, dict]:
    """Grade every (photograph, style) with the feed-forward network, and ``optimize_on`` pairs with Gatys'
    method: one row per output (method, content, style, the three measures, seconds); and the outputs."""
    network = evaluation_network(cfg["feature_network"])
    side = cfg["side"]
    rows, outputs = [], {}
    for name, content in images.items():
        for style in model.styles:
            start = time.perf_counter()
            styled = model.stylize(content, style)
            seconds = time.perf_counter() - start
            outputs[("feedforward", name, style)] = styled
            rows.append({"method": "feedforward", "content": name, "style": style,
                         **grade(network, styled, content, model.style_images[style], side), "seconds": round(seconds, 3)})
            colour_only = match_histograms(content, model.style_images[style])
            outputs[("color_only", name, style)] = colour_only
            rows.append({"method": "color_only", "content": name, "style": style,
                         **grade(network, colour_only, content, model.style_images[style], side), "seconds": 0.0})
    for name, style in optimize_on:
        print(f"stylize: optimizing {name} x {style}", file=sys.stderr, flush=True)
        styled, record = model.optimize(images[name], style)
        outputs[("optimize", name, style)] = styled
        rows.append({"method": "optimize", "content": name, "style": style,
                     **grade(network, styled, images[name], model.style_images[style], side), "seconds": record["seconds"]})
    return pd.DataFrame(rows), outputs


def summary(table: pd.DataFrame, prefix: str = "") -> dict[str, float]:
    """Mean of each measure per method: ``<method>_<prefix><measure>``."""
    out = {}
    for method, rows in table.groupby("method", sort=False):
        for measure in MEASURES:
            out[f"{method}_{prefix}{measure}"] = round(float(rows[measure].mean()), 4)
    return out


def optimize_pairs(cfg: dict[str, Any], names: list[str], styles: list[str]) -> list[tuple[str, str]]:
    wanted = [n for n in cfg["optimize_images"] if n in names] or names[:1]
    return [(n, s) for n in wanted for s in (cfg["optimize_styles"] or styles[:1]) if s in styles]


def validate(params: dict[str, Any], paths: AppPaths) -> dict[str, float]:
    """The quality figures on the validation photographs, both methods (``<method>_val_*``); nothing written."""
    cfg = params["evaluate"]
    model = load(paths.model_dir)
    images = photographs(paths, "val")
    table, _ = stylize_split(model, cfg, images, optimize_pairs({**cfg, "optimize_images": []}, list(images), model.styles)[:1])
    return summary(table[table["method"] != "color_only"], prefix="val_")


def seconds_per_image(model: LoadedStylizer, style: str, side: int, repeats: int) -> float:
    """Median seconds of the feed-forward network on a ``side`` x ``side`` image (after one warm-up run)."""
    image = torch.rand(3, side, side, generator=torch.Generator().manual_seed(0))
    model.stylize(image, style)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.stylize(image, style)
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 3)


def evaluate(params: dict[str, Any], paths: AppPaths) -> tuple[dict[str, Any], list[Path]]:
    cfg = params["evaluate"]
    model = load(paths.model_dir)
    images = photographs(paths, "test")
    pairs = optimize_pairs(cfg, list(images), model.styles)
    table, outputs = stylize_split(model, cfg, images, pairs)
    out = paths.plots
    table.to_csv(out / "per_image.csv", index=False)
    metrics: dict[str, Any] = summary(table)
    for row in table[table["method"] != "color_only"].itertuples():
        for measure in ("style_loss_ratio", "content_ssim"):
            metrics[f"{row.method}_{row.content}_{row.style}_{measure}"] = getattr(row, measure)
    metrics["seconds_per_image_512"] = seconds_per_image(model, model.styles[0], 512, cfg["timing_repeats"])
    optimized = table[table["method"] == "optimize"]
    if len(optimized):
        metrics["optimize_seconds_per_image_512"] = round(float(optimized["seconds"].max()), 2)  # slowest; sides <= 512
    metrics["optimize_working_side"] = model.settings["optimize"]["working_side"]
    metrics["optimize_steps"] = model.settings["optimize"]["steps"]
    metrics["n_test_images"] = len(images)
    metrics["n_styles"] = len(model.styles)
    metrics.update({k: v for k, v in model.saved["loss_record"].items()})
    picture = draw_grid(images, model, outputs, out / "grid.png")
    return metrics, [out / "per_image.csv", picture]


def draw_grid(images: dict[str, torch.Tensor], model: LoadedStylizer, outputs: dict, path: Path) -> Path:
    """First row: the styles; then per test photograph: the photograph, each style's feed-forward output, and the
    optimized outputs where there are some."""
    from matplotlib.figure import Figure

    columns = [("feedforward", s) for s in model.styles] + sorted({("optimize", s) for (m, _, s) in outputs if m == "optimize"})
    rows = len(images) + 1
    fig = Figure(figsize=(2.2 * (len(columns) + 1), 2.2 * rows), dpi=100, layout="constrained")
    for c, (method, style) in enumerate(columns):
        ax = fig.add_subplot(rows, len(columns) + 1, c + 2)
        ax.imshow(model.style_images[style].permute(1, 2, 0).numpy())
        ax.set_title(f"style: {style}\n({method})", fontsize=8)
        ax.set_axis_off()
    for r, (name, content) in enumerate(images.items(), start=1):
        ax = fig.add_subplot(rows, len(columns) + 1, r * (len(columns) + 1) + 1)
        ax.imshow(content.permute(1, 2, 0).numpy())
        ax.set_title(f"test: {name}", fontsize=8)
        ax.set_axis_off()
        for c, (method, style) in enumerate(columns):
            styled = outputs.get((method, name, style))
            ax = fig.add_subplot(rows, len(columns) + 1, r * (len(columns) + 1) + c + 2)
            ax.set_axis_off()
            if styled is not None:
                ax.imshow(styled.clamp(0, 1).permute(1, 2, 0).numpy())
    fig.suptitle("held-out photographs: feed-forward networks (one pass) and Gatys' optimization")
    fig.savefig(path)
    return path
