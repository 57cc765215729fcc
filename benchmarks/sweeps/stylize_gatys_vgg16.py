"""Gatys' method with the VGG-16 loss network: which style weight (and loss network)? Decided on the validation
photographs only, by the project's own graders (the learned judge's deception rate, content SSIM).

Every validation photograph is optimized in each of ``stylize.evaluate.optimize_styles`` with each candidate; the
rows go to benchmarks/sweeps/stylize_gatys_vgg16.csv (earlier rows stay). The rule, written before the run: the
highest mean validation deception rate among candidates with mean validation content SSIM >= 0.45 (the bar).
Run from the project root after `dvc repro stylize_prepare`:

    python benchmarks/sweeps/stylize_gatys_vgg16.py --style-weights 1 3 10
    python benchmarks/sweeps/stylize_gatys_vgg16.py --networks random_staged --style-weights 100   # the old default
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from cnnrnn.config import compose
from cnnrnn.paths import AppPaths
from cnnrnn.reproducibility import pin_numerics

ROOT = Path(__file__).resolve().parents[2]
SSIM_FLOOR = 0.45


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="+", default=["vgg16"])
    parser.add_argument("--style-weights", nargs="+", type=float, default=[1.0, 3.0, 10.0])
    parser.add_argument("--content-weights", nargs="+", type=float, default=[1.0])
    parser.add_argument("--steps", type=int, default=None, help="L-BFGS steps (default: stylize.predict.optimize.steps)")
    parser.add_argument("--side", type=int, default=None, help="working side (default: stylize.predict.optimize)")
    parser.add_argument("--keep-detail", nargs="+", type=int, default=[0], choices=[0, 1],
                        help="add the photograph's detail finer than the working side back (1) or not (0)")
    args = parser.parse_args()
    table_path = ROOT / "benchmarks" / "sweeps" / "stylize_gatys_vgg16.csv"
    composed = compose([], ROOT)
    pin_numerics(composed["runtime"])  # before torch is imported: the pipeline's threads and instruction set
    import torch

    from cnnrnn.stylize.evaluate import grade, make_graders, photographs
    from cnnrnn.stylize.loss_network import build_loss_network, weights_path
    from cnnrnn.stylize.optimize import optimize_image

    stylize = composed["stylize"]
    paths = AppPaths(ROOT, "stylize")
    graders = make_graders(stylize["evaluate"], paths)
    print({k: v for k, v in graders.record.items()}, flush=True)
    val = photographs(paths, "val")
    styles_file = torch.load(paths.prepared / "styles.pt")
    styles = {n: image.float() / 255 for n, image in zip(styles_file["names"], styles_file["images"])}
    rows = []
    for network in args.networks:
        loss_cfg = compose([f"stylize/loss={network}"], ROOT)["stylize"]["loss"]
        train = [image.float() / 255 for image in torch.load(paths.prepared / "train.pt")["images"]]
        levels, _ = build_loss_network(loss_cfg, [*train, *styles.values()], composed["seed"],
                                       weights_path(loss_cfg, paths.prepared.parent))
        for content_weight, keep_detail in ((c, k) for c in args.content_weights for k in args.keep_detail):
            for weight in args.style_weights:
                for name, content in val.items():
                    for style in stylize["evaluate"]["optimize_styles"]:
                        optimize = stylize["predict"]["optimize"]
                        side = args.side or optimize["working_side"]
                        cfg = {"working_side": side, "style_side": side, "steps": args.steps or optimize["steps"],
                               "content_weight": content_weight, "style_weight": weight,
                               "tv_weight": float(loss_cfg["tv_weight"]), "keep_detail": bool(keep_detail)}
                        start = time.perf_counter()
                        out, record = optimize_image(levels, content, styles[style], cfg)
                        row = {"loss_network": network, "content_weight": content_weight, "style_weight": weight,
                               "working_side": side, "steps": cfg["steps"], "keep_detail": keep_detail, "content": name, "style": style,
                               **grade(graders, out, content, style, styles[style]),
                               "seconds": round(time.perf_counter() - start, 1)}
                        print(row, flush=True)
                        rows.append(row)
    table = pd.DataFrame(rows)
    if table_path.exists():
        table = pd.concat([pd.read_csv(table_path), table], ignore_index=True)
    table.to_csv(table_path, index=False)
    if "keep_detail" in table:
        table["keep_detail"] = table["keep_detail"].fillna(0).astype(int)
    keys = ["loss_network", "content_weight", "style_weight", "working_side", "steps", "keep_detail"]
    means = table.groupby(keys)[["deception_rate", "content_ssim", "style_loss_ratio", "seconds"]].mean().round(3)
    print(means.to_string())
    eligible = means[means["content_ssim"] >= SSIM_FLOOR]
    if len(eligible):
        print("chosen (highest mean val deception rate with mean val content SSIM >= 0.45):",
              dict(zip(keys, eligible["deception_rate"].idxmax())))
    else:
        print(f"no candidate reaches mean val content SSIM {SSIM_FLOOR}")


if __name__ == "__main__":
    main()
