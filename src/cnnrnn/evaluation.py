"""The generic ``evaluate`` stage: an application's evaluation, written to metrics/, plots/ and MLflow.

Each application's ``evaluate`` module provides ``evaluate(params, paths) -> (metrics, files)``:
``metrics`` a flat dict of numbers for ``metrics/<app>.json``, ``files`` the pictures and
tables it wrote under ``plots/<app>/``. This module adds the training time, writes the
metrics atomically, and logs everything to an MLflow run (and the test metrics to the
training run too, so one row in the MLflow UI shows both).
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

from cnnrnn import tracking
from cnnrnn.atomic import write_json_atomically
from cnnrnn.stages import AppPaths


def evaluate(app: str, params: dict[str, Any], paths: AppPaths) -> dict[str, Any]:
    parts = importlib.import_module(f"cnnrnn.{app}.evaluate")
    summary = json.loads((paths.model_dir / "train_summary.json").read_text())
    info = json.loads((paths.prepared / "info.json").read_text())
    train_run_id = summary.get("run_id") or ""
    with tracking.start_run(paths.root, app, "evaluate", params, info, {"train_run_id": train_run_id}) as mlflow:
        paths.plots.mkdir(parents=True, exist_ok=True)
        metrics, files = parts.evaluate(params, paths)
        metrics = {**metrics, "train_seconds": summary["train_seconds"],
                   "train_samples_per_second": summary.get("samples_per_second")}
        write_json_atomically(paths.metrics, metrics)
        if mlflow is not None:
            numbers = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            mlflow.log_metrics(numbers)
            for f in files:
                mlflow.log_artifact(str(f), artifact_path="evaluation")
            mlflow.log_artifact(str(paths.metrics))
            if train_run_id:
                client = mlflow.MlflowClient()
                try:
                    for key, value in numbers.items():
                        if key.startswith(("test_", "n_test")):
                            client.log_metric(train_run_id, key, value)
                except Exception as err:  # the training run may live in another store (MLFLOW_TRACKING_URI changed)
                    print(f"cnnrnn: warning: test metrics not added to training run {train_run_id} ({err})",
                          file=sys.stderr)
    return metrics
