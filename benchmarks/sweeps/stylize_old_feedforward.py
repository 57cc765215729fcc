"""Is the VGG-16 feed-forward network better than the random-network one it replaced, on the same judge?

The feed-forward model of commit ef78cc0 (issue 26's last run: random_staged loss network, styles ihc and brick)
is read from the DVC cache by that commit's dvc.lock; it styles the test photographs, and the project's graders grade
its outputs exactly as ``cnnrnn evaluate stylize`` graded the current model's (plots/stylize/per_image.csv). Paired
over the (photograph, style) pairs both models have, with a 95% bootstrap interval. Also draws the two grids side by
side (docs/stylize_grids_random_vs_vgg16.png). Rows: benchmarks/sweeps/stylize_old_feedforward.csv. Run from the
project root after `dvc repro stylize_evaluate`:

    python benchmarks/sweeps/stylize_old_feedforward.py
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from cnnrnn.config import compose
from cnnrnn.paths import AppPaths
from cnnrnn.reproducibility import pin_numerics

ROOT = Path(__file__).resolve().parents[2]


def cached_model(revision: str) -> Path:
    """models/stylize/model.pt of ``revision``, from the local DVC cache (by that commit's dvc.lock)."""
    lock = yaml.safe_load(subprocess.run(["git", "show", f"{revision}:dvc.lock"], cwd=ROOT, check=True,
                                         capture_output=True, text=True).stdout)
    out = next(o for o in lock["stages"]["stylize_train"]["outs"] if o["path"] == "models/stylize")
    digest = out["md5"].removesuffix(".dir")
    listing = ROOT / ".dvc" / "cache" / "files" / "md5" / digest[:2] / f"{digest[2:]}.dir"
    entries = yaml.safe_load(listing.read_text())
    model = next(e["md5"] for e in entries if e["relpath"] == "model.pt")
    return ROOT / ".dvc" / "cache" / "files" / "md5" / model[:2] / model[2:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revision", default="ef78cc0")
    args = parser.parse_args()
    composed = compose([], ROOT)
    pin_numerics(composed["runtime"])
    import torch

    from cnnrnn.intervals import percentile_interval, resample_indices
    from cnnrnn.stylize.evaluate import grade, make_graders, photographs
    from cnnrnn.stylize.predict import LoadedStylizer

    stylize = composed["stylize"]
    paths = AppPaths(ROOT, "stylize")
    graders = make_graders(stylize["evaluate"], paths)
    old = LoadedStylizer(cached_model(args.revision))
    styles_file = torch.load(paths.prepared / "styles.pt")
    styles = {n: image.float() / 255 for n, image in zip(styles_file["names"], styles_file["images"])}
    new = pd.read_csv(ROOT / "plots" / "stylize" / "per_image.csv")
    new = new[new["method"] == "feedforward"]
    rows = []
    for name, content in photographs(paths, "test").items():
        for style in old.styles:
            if style not in set(new["style"]):
                continue
            out = old.stylize(content, style)
            rows.append({"model": f"random_staged ({args.revision})", "content": name, "style": style,
                         **grade(graders, out, content, style, styles[style])})
    table = pd.DataFrame(rows)
    merged = table.merge(new, on=["content", "style"], suffixes=("_old", "_new"))
    summary = {"pairs": len(merged)}
    for measure in ("deception_rate", "content_ssim", "style_loss_ratio", "vgg16_style_loss_ratio"):
        paired = (merged[f"{measure}_new"] - merged[f"{measure}_old"]).to_numpy(dtype=float)
        low, high = percentile_interval(paired[resample_indices(len(paired), 1000, 0)].mean(axis=1))
        summary.update({f"{measure}_old": round(float(merged[f"{measure}_old"].mean()), 4),
                        f"{measure}_new": round(float(merged[f"{measure}_new"].mean()), 4),
                        f"{measure}_new_minus_old": round(float(paired.mean()), 4),
                        f"{measure}_ci95": f"[{low:.3f}, {high:.3f}]"})
    print(summary)
    table.to_csv(ROOT / "benchmarks" / "sweeps" / "stylize_old_feedforward.csv", index=False)
    side_by_side(args.revision)


def side_by_side(revision: str) -> None:
    """The old and the new plots/stylize/grid.png next to each other, 1100 pixels high."""
    import io

    from PIL import Image

    old_png = subprocess.run(["git", "show", f"{revision}:plots/stylize/grid.png"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    old, new = Image.open(io.BytesIO(old_png)).convert("RGB"), Image.open(ROOT / "plots/stylize/grid.png").convert("RGB")
    height = 900
    old = old.resize((round(old.width * height / old.height), height), Image.Resampling.LANCZOS)
    new = new.resize((round(new.width * height / new.height), height), Image.Resampling.LANCZOS)
    both = Image.new("RGB", (old.width + new.width + 20, height), "white")
    both.paste(old, (0, 0))
    both.paste(new, (old.width + 20, 0))
    path = ROOT / "docs" / "stylize_grids_random_vs_vgg16.jpg"
    path.parent.mkdir(exist_ok=True)
    both.save(path, quality=85)
    print(f"wrote {path} ({np.round(path.stat().st_size / 1e3)} kB)")


if __name__ == "__main__":
    main()
