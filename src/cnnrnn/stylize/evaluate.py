"""Evaluate both methods on held-out photographs: style taken, content kept, colours, and time.

:func:`evaluate` styles every test photograph with every style's feed-forward network, and every test
photograph with each of ``evaluate.optimize_styles`` by Gatys' optimization (no test photograph is named in
the configuration), and grades each output with :mod:`cnnrnn.stylize.measures` using the fixed evaluation
network (not the loss network either method optimized). Metrics: per method the mean ``style_loss_ratio``,
``content_ssim`` and ``color_distance`` with 95% intervals over its (photograph, style) pairs, every pair's
figure beside them, ``seconds_per_image_512``, and the grain-only control (each test photograph with film grain
and nothing else: a control that can fail) with each method's paired difference from it.
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
from cnnrnn.intervals import percentile_interval, resample_indices
from cnnrnn.stylize.measures import color_distance, content_ssim, grain_only, style_loss_ratio
from cnnrnn.stylize.predict import LoadedStylizer, load

MEASURES = ("style_loss_ratio", "content_ssim", "color_distance")
CONTROL = "grain_only"  # the photograph with film grain and nothing else


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
            grainy = grain_only(content, cfg["grain_strength"], cfg["grain_seed"])
            outputs[(CONTROL, name, style)] = grainy
            rows.append({"method": CONTROL, "content": name, "style": style,
                         **grade(network, grainy, content, model.style_images[style], side), "seconds": 0.0})
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


def intervals(table: pd.DataFrame, resamples: int, seed: int) -> dict[str, float]:
    """95% intervals of each method's mean measures, resampling its (photograph, style) pairs, and each method's
    paired difference from the grain-only control on the same pairs (``<method>_vs_grain_only_<measure>_difference``:
    below 0 where the method's style ratio is lower, i.e. closer to the style than grain alone)."""
    out: dict[str, float] = {}
    control = table[table["method"] == CONTROL].set_index(["content", "style"])
    for method, rows in table.groupby("method", sort=False):
        draws = resample_indices(len(rows), resamples, seed)
        for measure in MEASURES:
            values = rows[measure].to_numpy(dtype=float)
            low, high = percentile_interval(values[draws].mean(axis=1))
            out.update({f"{method}_{measure}_ci95_low": round(low, 4), f"{method}_{measure}_ci95_high": round(high, 4)})
        if method == CONTROL:
            continue
        for measure in ("style_loss_ratio", "content_ssim"):
            paired = rows.set_index(["content", "style"])[measure] - control[measure]
            paired = paired.dropna().to_numpy(dtype=float)
            key = f"{method}_vs_{CONTROL}_{measure}_difference"
            low, high = percentile_interval(paired[resample_indices(len(paired), resamples, seed)].mean(axis=1))
            out.update({key: round(float(paired.mean()), 4), f"{key}_ci95_low": round(low, 4),
                        f"{key}_ci95_high": round(high, 4)})
    return out


def optimize_pairs(cfg: dict[str, Any], names: list[str], styles: list[str]) -> list[tuple[str, str]]:
    """Every photograph of the split with each of ``optimize_styles`` (the first style if none is named)."""
    return [(n, s) for n in names for s in (cfg["optimize_styles"] or styles[:1]) if s in styles]


def validate(params: dict[str, Any], paths: AppPaths) -> dict[str, float]:
    """The quality figures on the validation photographs, both methods (``<method>_val_*``); nothing written."""
    cfg = params["evaluate"]
    model = load(paths.model_dir)
    images = photographs(paths, "val")
    table, _ = stylize_split(model, cfg, images, optimize_pairs(cfg, list(images), model.styles))
    return summary(table, prefix="val_")


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
    metrics.update(intervals(table, cfg["bootstrap_resamples"], params["seed"]))
    for row in table[table["method"] != CONTROL].itertuples():
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
