"""Why the brick network paints blue (session 12): on one 192-pixel crop of each of the 6 training and 2 validation
photographs (never a test one), the committed feed-forward networks' outputs are scored with the training loss (its
terms unweighted, ``loss_total`` weighted) and with the grader's ``style_loss_ratio``, beside the same output made
grey (its luminance in all three channels). Where the loss network's ``style`` term is lower for the coloured output,
the loss pays the network for a colour that the style does not have. Results: benchmarks/sweeps/stylize_blue_check.csv. Run from the project root after ``dvc repro stylize_train``:

    python benchmarks/sweeps/stylize_blue_check.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from cnnrnn.stylize.crops import random_crop  # noqa: E402
from cnnrnn.stylize.features import evaluation_network  # noqa: E402
from cnnrnn.stylize.loss_network import build_loss_network  # noqa: E402
from cnnrnn.stylize.measures import grey, style_loss_ratio  # noqa: E402
from cnnrnn.stylize.model import training_loss_cfg  # noqa: E402
from cnnrnn.stylize.optimize import colour_projections, content_reference, loss_weights, transfer_losses  # noqa: E402
from cnnrnn.stylize.predict import LoadedStylizer  # noqa: E402


def main() -> None:
    S = yaml.safe_load(open(ROOT / "params.yaml"))["stylize"]
    loss_cfg = training_loss_cfg(S)
    levels, _ = build_loss_network(loss_cfg)
    weights = loss_weights(loss_cfg)
    grader = evaluation_network(S["evaluate"]["feature_network"])
    model = LoadedStylizer(ROOT / "models" / "stylize" / "model.pt")
    prepared = ROOT / "data" / "stylize" / "prepared"
    photos = []
    for split in ("train", "val"):
        saved = torch.load(prepared / f"{split}.pt")
        photos += [(split, Path(n).stem, image) for n, image in zip(saved["names"], saved["images"])]
    rows = []
    for style_name in model.styles:
        style = model.style_images[style_name]
        with torch.no_grad():
            targets, _ = levels(style[None])
            colours = colour_projections(style)
            torch.manual_seed(0)
            for split, photo, image in photos:
                crop = random_crop(image, 192, (1.0, 1.0))[None]
                features, distances = content_reference(levels, crop, targets)
                output = model.stylize(crop[0], style_name)[None]
                for variant, image_out in (("output", output), ("output_made_grey", grey(output)[:, None].expand_as(output))):
                    losses = transfer_losses(levels, image_out, features, distances, targets, weights, colours)
                    rows.append({"style": style_name, "split": split, "photo": photo, "variant": variant,
                                 **{f"loss_{k}": round(float(v), 4) for k, v in losses.items()},
                                 "grader_style_loss_ratio": round(style_loss_ratio(grader, image_out[0], crop[0], style,
                                                                                   S["evaluate"]["side"]), 4),
                                 "mean_rgb": " ".join(f"{float(c):.3f}" for c in image_out[0].mean(dim=(1, 2)))})
    table = pd.DataFrame(rows)
    table.to_csv(ROOT / "benchmarks" / "sweeps" / "stylize_blue_check.csv", index=False)
    pd.set_option("display.width", 200)
    print(table[table["style"] == "brick"].to_string(index=False))


if __name__ == "__main__":
    main()
