"""The sentiment sweep of issue 9: each model's epochs (and the CNN's and RNN's sizes) chosen by validation.

Run from the project root after `cnnrnn prepare sentiment`:
    OMP_NUM_THREADS=1 python benchmarks/sweeps/sentiment.py [WORK_DIR [MODEL ...]]
(one thread each: on shared cores two sweeps of different models side by side beat one with two threads).
Each point trains one model in a scratch copy of the project (cnnrnn.sweep: conf/, a params.yaml
with the point's overrides, the project's prepared data through a symlink) and records only the
figures of sentiment's `validate` for that model (the validation split, and the validation
construction families); the test split is never measured. A point equal to the model the project
has already trained (same model config) reuses that model instead of training it again. Writes
benchmarks/sweeps/sentiment.csv (one row per point; `model` = the model swept, empty size columns =
that model has no such key; `chosen` = the highest val_accuracy of its model, which conf/ then uses).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pandas as pd

from cnnrnn.config import app_params
from cnnrnn.paths import AppPaths
from cnnrnn.sentiment.evaluate import validate
from cnnrnn.sweep import point_name, scratch_project, train_point

# model -> the points tried (Hydra overrides below sentiment.models.<model>); the last is the old default.
POINTS = {
    "bow": [{"train.max_epochs": 4}, {"train.max_epochs": 8}],
    "window": [{"train.max_epochs": 4}, {"train.max_epochs": 6}],
    "cnn": [{"filters": 100, "train.max_epochs": 4}, {"filters": 50, "train.max_epochs": 6},
            {"filters": 100, "train.max_epochs": 8}, {"filters": 100, "train.max_epochs": 12},
            {"filters": 100, "train.max_epochs": 6}],
    "rnn": [{"hidden": 128, "train.max_epochs": 4}, {"hidden": 64, "train.max_epochs": 6},
            {"hidden": 128, "train.max_epochs": 8}, {"hidden": 128, "train.max_epochs": 6}],
}
ROOT = Path.cwd()
WORK = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/sentiment_sweep")
MODELS = sys.argv[2:] or list(POINTS)
OUTPUT = ROOT / "benchmarks" / "sweeps" / "sentiment.csv"
os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{WORK / 'mlflow.db'}")
WORK.mkdir(parents=True, exist_ok=True)



def project_model_matches(model: str, model_cfg: dict) -> bool:
    """Whether the project's own trained ``model`` was trained with exactly ``model_cfg`` (then it is reused)."""
    from cnnrnn.model_file import read_model_file

    path = AppPaths(ROOT, "sentiment").model_dir / model / "model.pt"
    return path.is_file() and read_model_file(path, "sentiment", "cnnrnn train sentiment")["model_cfg"] == model_cfg


rows = []
for model in MODELS:
    for point in POINTS[model]:
        print(f"sentiment sweep: {model} {point}", flush=True)
        overrides = [f"sentiment.models.{model}.{k}={v}" for k, v in point.items()]
        work = scratch_project(ROOT, WORK / model / point_name(dict(o.split("=") for o in overrides)), "sentiment",
                               overrides, [])
        params = app_params("sentiment", work)
        if project_model_matches(model, params["models"][model]):  # the default point: the project's own model
            work, seconds = ROOT, None
        else:
            seconds = round(train_point(work, "sentiment", model), 1)
        # Only the swept model: validate() measures each model alone, so the others need not exist here.
        params = {**params, "models": {model: params["models"][model]},
                  "evaluate": {**params["evaluate"], "primary_model": model}}
        start = time.perf_counter()
        figures = validate(params, AppPaths(work, "sentiment"))
        rows.append({"model": model, **{k.split(".")[-1]: v for k, v in point.items()},
                     "val_accuracy": figures[f"{model}_val_accuracy"],
                     "val_contrast_pair_accuracy": figures[f"{model}_val_contrast_pair_accuracy"],
                     "trained_in": "project" if work == ROOT else "scratch", "train_seconds": seconds,
                     "validate_seconds": round(time.perf_counter() - start, 1)})
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        others = pd.read_csv(OUTPUT) if OUTPUT.is_file() else pd.DataFrame(columns=["model"])
        others = others[~others["model"].isin(MODELS)].drop(columns="chosen", errors="ignore")
        table = pd.concat([others, pd.DataFrame(rows)], ignore_index=True)
        table["model"] = pd.Categorical(table["model"], list(POINTS), ordered=True)
        table = table.sort_values("model", kind="stable").reset_index(drop=True)
        # The default each model gets: its point with the highest validation accuracy.
        table["chosen"] = table.index.isin(table.groupby("model", observed=True)["val_accuracy"].idxmax().values)
        sizes = [c for c in ("filters", "hidden") if c in table]
        figures = ["val_accuracy", "val_contrast_pair_accuracy", "chosen", "trained_in", "train_seconds",
                   "validate_seconds"]
        table[["model", *sizes, "max_epochs", *figures]].to_csv(OUTPUT, index=False)
        print(rows[-1], flush=True)
