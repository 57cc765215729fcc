"""How far does a longer feed-forward training go? The judge's deception rate on the validation photographs against
training seconds, for one style network trained with the pipeline's model, crops and loss.

A plain torch loop (no Lightning; AdamW at the configured learning rate, constant after a 5% warm-up, so every
snapshot is a run that could have stopped there): every ``--every`` seconds of training the network styles the
validation photographs and the project's graders grade them (grading time not counted). Rows go to
benchmarks/sweeps/stylize_feedforward_curve.csv (earlier rows stay), the curve to
benchmarks/sweeps/stylize_feedforward_curve.png. Validation photographs only. Run from the project root after
`dvc repro stylize_prepare`; ``--device cuda`` on a GPU machine answers "what does a GPU change".

    python benchmarks/sweeps/stylize_feedforward_curve.py --style starry_night --seconds 900 --every 90
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from cnnrnn.config import compose
from cnnrnn.paths import AppPaths
from cnnrnn.reproducibility import cpu_model, pin_numerics

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--seconds", type=float, default=900.0)
    parser.add_argument("--every", type=float, default=90.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--label", default="", help="a name for this curve's rows (default: the device)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. stylize.train.crop_side=128")
    args = parser.parse_args()
    composed = compose(list(args.overrides), ROOT)
    pin_numerics(composed["runtime"])
    import torch

    from cnnrnn.stylize.crops import colour_jitter, random_crop
    from cnnrnn.stylize.evaluate import grade, make_graders, photographs
    from cnnrnn.stylize.loss_network import build_loss_network, weights_path
    from cnnrnn.stylize.model import training_loss_cfg
    from cnnrnn.stylize.network import build_style_network
    from cnnrnn.stylize.optimize import colour_projections, content_reference, loss_weights, transfer_losses

    stylize = {**composed["stylize"], "seed": composed["seed"]}
    paths = AppPaths(ROOT, "stylize")
    graders = make_graders(stylize["evaluate"], paths)
    val = photographs(paths, "val")
    train = [image.float() / 255 for image in torch.load(paths.prepared / "train.pt")["images"]]
    styles_file = torch.load(paths.prepared / "styles.pt")
    style = styles_file["images"][styles_file["names"].index(args.style)].float() / 255
    loss_cfg = training_loss_cfg(stylize)
    levels, _ = build_loss_network(loss_cfg, None, stylize["seed"], weights_path(loss_cfg, paths.prepared.parent))
    device = torch.device(args.device)
    levels.network.to(device)
    torch.manual_seed(stylize["seed"])
    network = build_style_network(stylize["model"]).to(device)
    with torch.no_grad():
        style_grams, _ = levels(style[None].to(device))
        style_colours = colour_projections(style.to(device))
    cfg = stylize["train"]
    weights = loss_weights(loss_cfg)
    optimizer = torch.optim.AdamW(network.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    generator = torch.Generator().manual_seed(stylize["seed"])
    rows, trained, steps, next_snapshot = [], 0.0, 0, args.every
    label = args.label or (torch.cuda.get_device_name(0) if device.type == "cuda" else cpu_model())
    while trained < args.seconds:
        start = time.perf_counter()
        for group in optimizer.param_groups:  # 5% warm-up, then constant
            group["lr"] = cfg["lr"] * min(1.0, (trained + 1e-9) / (0.05 * args.seconds))
        crops = torch.stack([random_crop(train[i], cfg["crop_side"], tuple(cfg["scales"]), generator)
                             for i in torch.randint(len(train), (cfg["batch_size"],), generator=generator).tolist()])
        if cfg.get("augment") == "colour":
            crops = torch.stack([colour_jitter(c, generator) for c in crops])
        crops = crops.to(device)
        content_features, content_distances = content_reference(levels, crops, style_grams)
        network.train()
        losses = transfer_losses(levels, network(crops), content_features, content_distances, style_grams, weights,
                                 style_colours)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        trained += time.perf_counter() - start
        steps += 1
        if trained >= next_snapshot or trained >= args.seconds:
            next_snapshot += args.every
            network.eval()
            with torch.no_grad():
                graded = [grade(graders, network(image[None].to(device))[0].clamp(0, 1).cpu(), image, args.style, style)
                          for image in val.values()]
            row = {"label": label, "style": args.style, "seconds": round(trained, 1), "steps": steps,
                   **{f"val_{k}": round(sum(g[k] for g in graded) / len(graded), 4)
                      for k in ("deception_rate", "content_ssim", "style_loss_ratio")}}
            print(row, flush=True)
            rows.append(row)
    table_path = ROOT / "benchmarks" / "sweeps" / "stylize_feedforward_curve.csv"
    table = pd.DataFrame(rows)
    if table_path.exists():
        table = pd.concat([pd.read_csv(table_path), table], ignore_index=True)
    table.to_csv(table_path, index=False)
    draw(table, table_path.with_suffix(".png"))


def draw(table: pd.DataFrame, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for (label, style), rows in table.groupby(["label", "style"]):
        ax.plot(rows["seconds"], rows["val_deception_rate"], marker="o", label=f"{style}, {label}")
    ax.set_xlabel("training seconds (one style network)")
    ax.set_ylabel("validation deception rate")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    fig.savefig(path)


if __name__ == "__main__":
    main()
