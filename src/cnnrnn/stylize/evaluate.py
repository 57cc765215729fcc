"""Evaluate both methods on held-out photographs: style taken, content kept, colours, and time.

:func:`evaluate` styles every test photograph with every trained style's feed-forward network, and with each of
``evaluate.optimize_styles`` by Gatys' optimization (no test photograph is named in the configuration), and grades
each output three ways, none of them the loss network either method optimized:

- ``deception_rate``: the learned judge (:mod:`cnnrnn.stylize.judge`), trained here from scratch on the training
  photographs and the style images: the share of the output's crops it takes for the target style;
- ``style_loss_ratio``: the fixed random *evaluation* network's Gram distance on the luminance (colour cannot move it),
  relative to the unstyled photograph's; colour is graded apart (``color_distance``);
- ``content_ssim``: are the photograph's edges still where they were.

``vgg16_style_loss_ratio`` is the same ratio in the VGG-16 loss network's features: the loss network's own view,
reported, never a bar. Three *controls* that can fail are graded on every (photograph, style) pair the methods are:
the unstyled photograph, the photograph with the style's colour histogram (``colour_matched``) and with film grain
(``grain_only``). Metrics: each method's and control's means with 95% intervals over its (photograph, style) pairs,
each method's paired difference from each control, every pair's figures, and the seconds.
:func:`validate` computes the means on the validation photographs, and writes nothing.

Files (``plots/stylize/``): ``per_image.csv`` and ``grid.png`` (content, style and each method's output).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from cnnrnn.intervals import percentile_interval, resample_indices
from cnnrnn.paths import AppPaths
from cnnrnn.stylize.features import FeatureNetwork, evaluation_network
from cnnrnn.stylize.judge import StyleJudge, deception_rate, fit_judge, judge_accuracy
from cnnrnn.stylize.measures import color_distance, content_ssim, grain_only, match_histograms, style_loss_ratio
from cnnrnn.stylize.predict import LoadedStylizer, load

MEASURES = ("deception_rate", "style_loss_ratio", "content_ssim", "color_distance", "vgg16_style_loss_ratio")
METHODS = ("feedforward", "optimize")
CONTROLS = ("unstyled", "colour_matched", "grain_only")  # images that took nothing of the style's texture
COMPARED = ("deception_rate", "style_loss_ratio", "content_ssim")  # each method against each control, paired
VGG16_VIEW = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")  # Gatys' style layers


@dataclass
class Graders:
    """The fixed evaluation network (on luminance), the learned judge, and VGG-16 (None where prepare made none)."""

    network: FeatureNetwork
    judge: StyleJudge
    judge_cfg: dict[str, Any]
    vgg16: FeatureNetwork | None
    side: int
    record: dict[str, float]


_GRADERS: dict[str, Graders] = {}  # validate and evaluate of one stage run share them


def make_graders(cfg: dict[str, Any], paths: AppPaths) -> Graders:
    """Build the graders of ``stylize.evaluate``: the judge is trained here on the training photographs and the style
    images (seeded by ``judge.seed``), and checked on held-out strips of the styles and on the validation photographs."""
    key = json.dumps([str(paths.prepared), cfg], sort_keys=True, default=str)
    if key not in _GRADERS:
        _GRADERS.clear()
        _GRADERS[key] = _make_graders(cfg, paths)
    return _GRADERS[key]


def _make_graders(cfg: dict[str, Any], paths: AppPaths) -> Graders:
    styles_file = torch.load(paths.prepared / "styles.pt")
    styles = {n: image.float().div(255) for n, image in zip(styles_file["names"], styles_file["images"])}
    judge_cfg = cfg["judge"]
    print(f"stylize: training the judge ({judge_cfg['steps']} steps)", file=sys.stderr, flush=True)
    judge, record = fit_judge(judge_cfg, styles, list(photographs(paths, "train").values()), judge_cfg["seed"])
    record.update(judge_accuracy(judge, styles, list(photographs(paths, "val").values()), judge_cfg))
    vgg16 = None
    weights = paths.prepared / "vgg16.pt"
    if weights.is_file():
        from cnnrnn.stylize.vgg16 import load_vgg16_features

        vgg16 = load_vgg16_features(weights, VGG16_VIEW)
    return Graders(evaluation_network(cfg["feature_network"]), judge, judge_cfg, vgg16, cfg["side"], record)


def grade(graders: Graders, output: torch.Tensor, content: torch.Tensor, style_name: str,
          style: torch.Tensor) -> dict[str, float]:
    row = {"deception_rate": round(deception_rate(graders.judge, output, style_name, graders.judge_cfg), 4),
           "style_loss_ratio": round(style_loss_ratio(graders.network, output, content, style, graders.side), 4),
           "content_ssim": round(content_ssim(output, content), 4),
           "color_distance": round(color_distance(output, style), 4)}
    if graders.vgg16 is not None:
        row["vgg16_style_loss_ratio"] = round(style_loss_ratio(graders.vgg16, output, content, style, graders.side), 4)
    return row


def photographs(paths: AppPaths, split: str) -> dict[str, torch.Tensor]:
    saved = torch.load(paths.prepared / f"{split}.pt")
    return {name: image.float().div(255) for name, image in zip(saved["names"], saved["images"])}


def controls(content: torch.Tensor, style: torch.Tensor, cfg: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The control images of one (photograph, style) pair: :data:`CONTROLS`."""
    return {"unstyled": content, "colour_matched": match_histograms(content, style),
            "grain_only": grain_only(content, cfg["grain_strength"], cfg["grain_seed"])}


def stylize_split(model: LoadedStylizer, cfg: dict[str, Any], graders: Graders, images: dict[str, torch.Tensor],
                  optimize_on: list[tuple[str, str]]) -> tuple[pd.DataFrame, dict]:
    """Grade every (photograph, trained style) with the feed-forward network, ``optimize_on`` pairs with Gatys'
    method, and the controls of every pair either method styled: one row per image (method, content, style, the
    measures, seconds); and the images."""
    rows, outputs = [], {}

    def add(method: str, name: str, style: str, image: torch.Tensor, seconds: float) -> None:
        outputs[(method, name, style)] = image
        rows.append({"method": method, "content": name, "style": style,
                     **grade(graders, image, images[name], style, model.style_images[style]), "seconds": round(seconds, 3)})

    for name, content in images.items():
        for style in model.styles:
            start = time.perf_counter()
            styled = model.stylize(content, style)
            add("feedforward", name, style, styled, time.perf_counter() - start)
    for name, style in optimize_on:
        print(f"stylize: optimizing {name} x {style}", file=sys.stderr, flush=True)
        styled, record = model.optimize(images[name], style)
        add("optimize", name, style, styled, record["seconds"])
    for name, style in sorted({(n, s) for (_, n, s) in outputs}, key=lambda pair: (list(images).index(pair[0]), pair[1])):
        for control, image in controls(images[name], model.style_images[style], cfg).items():
            add(control, name, style, image, 0.0)
    return pd.DataFrame(rows), outputs


def summary(table: pd.DataFrame, prefix: str = "") -> dict[str, float]:
    """Mean of each measure per method: ``<method>_<prefix><measure>``."""
    out = {}
    for method, rows in table.groupby("method", sort=False):
        for measure in MEASURES:
            if measure in rows and not rows[measure].isna().all():
                out[f"{method}_{prefix}{measure}"] = round(float(rows[measure].mean()), 4)
    return out


def intervals(table: pd.DataFrame, resamples: int, seed: int) -> dict[str, float]:
    """95% intervals of each method's and control's mean measures, resampling its (photograph, style) pairs, and each
    method's paired difference from each control on the same pairs (``<method>_vs_<control>_<measure>_difference``:
    above 0 where the method's deception rate is higher than the control's)."""
    out: dict[str, float] = {}
    indexed = {method: rows.set_index(["content", "style"]) for method, rows in table.groupby("method", sort=False)}
    for method, rows in table.groupby("method", sort=False):
        draws = resample_indices(len(rows), resamples, seed)
        for measure in MEASURES:
            if measure not in rows or rows[measure].isna().all():
                continue
            values = rows[measure].to_numpy(dtype=float)
            low, high = percentile_interval(values[draws].mean(axis=1))
            out.update({f"{method}_{measure}_ci95_low": round(low, 4), f"{method}_{measure}_ci95_high": round(high, 4)})
        if method not in METHODS:
            continue
        for control in (c for c in CONTROLS if c in indexed):
            for measure in COMPARED:
                paired = (indexed[method][measure] - indexed[control][measure]).dropna().to_numpy(dtype=float)
                key = f"{method}_vs_{control}_{measure}_difference"
                low, high = percentile_interval(paired[resample_indices(len(paired), resamples, seed)].mean(axis=1))
                out.update({key: round(float(paired.mean()), 4), f"{key}_ci95_low": round(low, 4),
                            f"{key}_ci95_high": round(high, 4)})
    return out


def optimize_pairs(cfg: dict[str, Any], names: list[str], model: LoadedStylizer) -> list[tuple[str, str]]:
    """Every photograph of the split with each of ``optimize_styles`` (the first trained style if none is named)."""
    wanted = cfg["optimize_styles"] or model.styles[:1]
    unknown = [s for s in wanted if s not in model.style_images]
    if unknown:
        from cnnrnn.errors import UserError

        raise UserError(f"stylize.evaluate.optimize_styles: {unknown[0]!r} is not a style of the model; choose among "
                        f"{', '.join(model.style_images)}")
    return [(n, s) for n in names for s in wanted]


def validate(params: dict[str, Any], paths: AppPaths) -> dict[str, float]:
    """The quality figures on the validation photographs, both methods (``<method>_val_*``); nothing written."""
    cfg = params["evaluate"]
    model = load(paths.model_dir, paths.prepared.parent)
    images = photographs(paths, "val")
    graders = make_graders(cfg, paths)
    table, _ = stylize_split(model, cfg, graders, images, optimize_pairs(cfg, list(images), model))
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
    model = load(paths.model_dir, paths.prepared.parent)
    images = photographs(paths, "test")
    graders = make_graders(cfg, paths)
    table, outputs = stylize_split(model, cfg, graders, images, optimize_pairs(cfg, list(images), model))
    out = paths.plots
    table.to_csv(out / "per_image.csv", index=False)
    metrics: dict[str, Any] = summary(table)
    metrics.update(intervals(table, cfg["bootstrap_resamples"], params["seed"]))
    for row in table[table["method"].isin(METHODS)].itertuples():
        for measure in ("deception_rate", "style_loss_ratio", "content_ssim"):
            metrics[f"{row.method}_{row.content}_{row.style}_{measure}"] = getattr(row, measure)
    metrics["seconds_per_image_512"] = seconds_per_image(model, model.styles[0], 512, cfg["timing_repeats"])
    optimized = table[table["method"] == "optimize"]
    if len(optimized):
        metrics["optimize_seconds_per_image_512"] = round(float(optimized["seconds"].max()), 2)  # slowest; sides <= 512
    metrics["optimize_working_side"] = model.settings["optimize"]["working_side"]
    metrics["optimize_steps"] = model.settings["optimize"]["steps"]
    metrics["n_test_images"] = len(images)
    metrics["n_styles"] = len(model.style_images)
    metrics["n_trained_styles"] = len(model.styles)
    summary_file = paths.model_dir / "train_summary.json"
    if summary_file.is_file():  # the feed-forward networks train together: the bar is per style
        metrics["train_seconds_per_style"] = round(json.loads(summary_file.read_text())["train_seconds"] / len(model.styles), 1)
    metrics.update(graders.record)
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
