"""Which loss network, style weight and content level? Decided on the validation photograph only.

Gatys' optimization (the cheapest way to see what a loss network can do: no training) styles the
validation photograph in every style with each candidate loss network and style weight; the fixed
evaluation network grades it. Adds its rows to benchmarks/sweeps/stylize_loss_networks.csv (earlier rows
stay). Run from the project root after `dvc repro stylize_prepare`:

    python benchmarks/sweeps/stylize_loss_networks.py                      # the first sweep (content level 0)
    python benchmarks/sweeps/stylize_loss_networks.py --networks random_staged --style-weights 100 \
        --content-levels 1 2 --content-weights 1 3                          # deeper content levels
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch

from cnnrnn.config import compose
from cnnrnn.stylize.features import evaluation_network
from cnnrnn.stylize.loss_network import build_loss_network
from cnnrnn.stylize.measures import color_distance, content_ssim, style_loss_ratio
from cnnrnn.stylize.optimize import optimize_image

ROOT = Path(__file__).resolve().parents[2]
NETWORKS = ("random_staged", "patch_cnn")  # random_pyramid: about 170 s a run here (full-resolution 5x5 filters), left out
STYLE_WEIGHTS = (10.0, 30.0, 100.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS))
    parser.add_argument("--style-weights", nargs="+", type=float, default=list(STYLE_WEIGHTS))
    parser.add_argument("--content-levels", nargs="+", type=int, default=[0])
    parser.add_argument("--content-weights", nargs="+", type=float, default=[1.0])
    args = parser.parse_args()
    table_path = ROOT / "benchmarks" / "sweeps" / "stylize_loss_networks.csv"
    prepared = ROOT / "data" / "stylize" / "prepared"
    val, styles = torch.load(prepared / "val.pt"), torch.load(prepared / "styles.pt")
    train, extra = torch.load(prepared / "train.pt"), torch.load(prepared / "extra_training.pt")
    fit_on = [img.float() / 255 for img in (*train["images"], *styles["images"], *extra["images"])]
    rows = []
    for network in args.networks:
        params = compose([f"stylize/loss={network}"], ROOT)
        stylize = params["stylize"]
        grader = evaluation_network(stylize["evaluate"]["feature_network"])
        for content_level, content_weight, weight in ((c, w, s) for c in args.content_levels
                                                       for w in args.content_weights for s in args.style_weights):
            levels, _ = build_loss_network({**stylize["loss"], "content_level": content_level}, fit_on, params["seed"])
            for name, content in zip(val["names"], val["images"]):
                for style_name, style in zip(styles["names"], styles["images"]):
                    content_f, style_f = content.float() / 255, style.float() / 255
                    cfg = {**stylize["predict"]["optimize"], "content_weight": content_weight, "style_weight": weight,
                           "tv_weight": float(stylize["loss"]["tv_weight"])}
                    out, record = optimize_image(levels, content_f, style_f, cfg)
                    row = {"loss_network": network, "style_weight": weight, "content_level": content_level,
                           "content_weight": content_weight, "content": name, "style": style_name,
                           "val_style_loss_ratio": round(style_loss_ratio(grader, out, content_f, style_f,
                                                                          stylize["evaluate"]["side"]), 4),
                           "val_content_ssim": round(content_ssim(out, content_f), 4),
                           "val_color_distance": round(color_distance(out, style_f), 4), "seconds": record["seconds"]}
                    print(row, file=sys.stderr, flush=True)
                    rows.append(row)
    earlier = pd.read_csv(table_path) if table_path.exists() else pd.DataFrame()
    if len(earlier):  # rows of the first sweep: content level 0, content weight 1
        earlier = earlier.assign(content_level=earlier.get("content_level", 0), content_weight=earlier.get("content_weight", 1.0))
    table = pd.concat([earlier, pd.DataFrame(rows)], ignore_index=True)
    columns = ["loss_network", "style_weight", "content_level", "content_weight"]
    table = table[columns + [c for c in table.columns if c not in columns]]
    table.to_csv(table_path, index=False)
    print(table.groupby(columns)[["val_style_loss_ratio", "val_content_ssim"]].mean().round(3))


if __name__ == "__main__":
    main()
