"""A team's view of the runs: `cnnrnn compare` tables them, `cnnrnn promote` registers a model, `predict --model-uri` uses it."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from cnnrnn.config import compose, load_params, write_params
from cnnrnn.registry import tiny_overrides


def cnnrnn(root: Path, env: dict, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "cnnrnn.cli", *args], cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"cnnrnn {' '.join(args)}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done.stdout


def test_compare_promote_and_predict_from_the_registry(project_copy, cli_env, tmp_path):
    root = project_copy
    write_params(compose(tiny_overrides(["classify"]), root), root)
    for stage in ("fetch", "prepare", "train", "evaluate"):
        cnnrnn(root, cli_env, stage, "classify")
    params = load_params(root)  # a second run, as `dvc exp run -S classify.train.lr=...` would make it
    params["classify"]["train"]["lr"] = params["classify"]["train"]["lr"] / 10
    write_params(params, root)
    experiment = {**cli_env, "DVC_EXP_NAME": "lower-lr"}
    for stage in ("train", "evaluate"):
        cnnrnn(root, experiment, stage, "classify")

    table = pd.read_csv(io.StringIO(cnnrnn(root, cli_env, "compare", "classify", "--sort", "test_accuracy", "--csv")))
    assert len(table) == 2 and list(table.columns[:6]) == ["run_id", "start_time", "status", "experiment", "commit", "stage"]
    assert "train.lr" in table.columns and "train.max_epochs" not in table.columns  # only the params that differ
    assert table["test_accuracy"].is_monotonic_decreasing
    assert set(table["experiment"].fillna("")) == {"", "lower-lr"}
    assert "test_accuracy" in cnnrnn(root, cli_env, "compare", "classify")  # the plain table

    promoted = cnnrnn(root, cli_env, "promote", "classify")
    assert "as models:/classify@champion" in promoted

    import mlflow

    mlflow.set_tracking_uri(cli_env["MLFLOW_TRACKING_URI"])
    version = mlflow.MlflowClient().get_model_version_by_alias("classify", "champion")
    assert float(version.tags["test_accuracy"]) == float(table.loc[table["experiment"] == "lower-lr", "test_accuracy"].iloc[0])

    image = torch.load(root / "data/classify/prepared/test.pt", weights_only=False)["images"][0, 0]
    path = tmp_path / "digit.png"
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(path)
    local = cnnrnn(root, cli_env, "predict", "classify", "--json", str(path))
    registered = cnnrnn(root, cli_env, "predict", "classify", "--json", "--model-uri", "models:/classify@champion", str(path))
    assert registered == local and registered.strip()
