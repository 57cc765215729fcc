"""A team's view of the runs: `cnnrnn compare` tables them, `cnnrnn promote` registers a model, `predict --model-uri` uses it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cnnrnn.config import compose, write_params
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
    assert "test_accuracy" in cnnrnn(root, cli_env, "compare", "classify")  # (a sweep's table: test_sharing.py)

    promoted = cnnrnn(root, cli_env, "promote", "classify")
    assert "as models:/classify@champion" in promoted

    import mlflow

    mlflow.set_tracking_uri(cli_env["MLFLOW_TRACKING_URI"])
    version = mlflow.MlflowClient().get_model_version_by_alias("classify", "champion")
    assert float(version.tags["test_accuracy"]) == json.loads((root / "metrics/classify.json").read_text())["test_accuracy"]

    image = torch.load(root / "data/classify/prepared/test.pt", weights_only=False)["images"][0, 0]
    path = tmp_path / "digit.png"
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(path)
    local = cnnrnn(root, cli_env, "predict", "classify", "--json", str(path))
    registered = cnnrnn(root, cli_env, "predict", "classify", "--json", "--model-uri", "models:/classify@champion", str(path))
    assert registered == local and registered.strip()
