"""The generic ``evaluate`` stage: an application's evaluation, written to metrics/, plots/ and MLflow.

Each application's ``evaluate`` part (see :mod:`cnnrnn.registry`) provides ``evaluate(params, paths) -> (metrics, files)``:
``metrics`` a flat dict of numbers for ``metrics/<app>.json``, ``files`` the pictures and
tables it wrote under ``plots/<app>/``; and ``validate(params, paths) -> metrics``, the same
measurements on the validation split (``val_*``), which go to the same file and run. This module adds the training time, writes the
metrics atomically, and logs everything to an MLflow run (and the test metrics to the
training run too, so one row in the MLflow UI shows both).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from cnnrnn import reproducibility, tracking
from cnnrnn.atomic import write_json_atomically
from cnnrnn.paths import AppPaths, ModelPaths, model_names
from cnnrnn.registry import application


def train_summaries(app: str, params: dict[str, Any], paths: AppPaths) -> dict[str, dict[str, Any]]:
    """``train_summary.json`` of the application's model ({"": ...}) or of each of its ``models`` ({name: ...})."""
    names = model_names(params)
    if not names:
        return {"": json.loads((paths.model_dir / "train_summary.json").read_text())}
    return {name: json.loads((ModelPaths(paths.root, app, name).model_dir / "train_summary.json").read_text())
            for name in names}


def metrics_of_model(numbers: dict[str, float], name: str, names: list[str], evaluate_cfg: dict) -> list[str]:
    """Which evaluation metrics belong on a model's training run.

    One model (``name`` ""): its ``test_*`` metrics (its ``val_*`` curves are the training run's own). Several: those named ``<name>_*``, and for the
    ``evaluate.primary_model`` also every metric not named after a model (e.g. ``test_perplexity``).
    """
    if not name:
        return [k for k in numbers if k.startswith(("test_", "n_test"))]
    own = [k for k in numbers if k.startswith(f"{name}_")]
    if name == evaluate_cfg.get("primary_model", names[0]):
        own += [k for k in numbers if not any(k.startswith(f"{n}_") for n in names)]
    return own


def evaluate(app: str, params: dict[str, Any], paths: AppPaths, finish=None) -> dict[str, Any]:
    """Evaluate, write and log; ``finish()`` (moving staged outputs into place) runs last, inside the MLflow run,
    so a run is FINISHED only once its outputs are in place."""
    parts = application(app).part("evaluate")
    summaries = train_summaries(app, params, paths)
    info = json.loads((paths.prepared / "info.json").read_text())
    train_runs = {name: s.get("run_id") or "" for name, s in summaries.items()}
    run_tags = {"train_run_id": ",".join(r for r in train_runs.values() if r)}
    owner = paths.root / ".cache" / "runs" / f"{app}_evaluate.json"  # a killed evaluation's run is marked KILLED next time
    with tracking.start_run(paths.root, app, "evaluate", params, info, run_tags, owner_file=owner) as mlflow:
        paths.plots.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        validation = parts.validate(params, paths)
        metrics, files = parts.evaluate(params, paths)
        metrics = {**validation, **metrics}
        evaluate_seconds = round(time.perf_counter() - start, 2)
        timing = {"train_seconds": round(sum(s["train_seconds"] for s in summaries.values()), 2)}
        if "" in summaries:
            timing["train_samples_per_second"] = summaries[""].get("samples_per_second")
        else:
            timing.update({f"{name}_train_seconds": s["train_seconds"] for name, s in summaries.items()})
        timing["evaluate_seconds"] = evaluate_seconds
        timing["train_and_evaluate_seconds"] = round(timing["train_seconds"] + evaluate_seconds, 2)
        # the machine it ran on, for `cnnrnn verify` and a reader of the metrics (verify ignores it)
        metrics = {**metrics, **timing, reproducibility.FINGERPRINT_KEY: reproducibility.fingerprint(brief=True)}
        write_json_atomically(paths.metrics, metrics)
        if mlflow is not None:
            numbers = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            mlflow.log_metrics(numbers)
            for f in files:
                mlflow.log_artifact(str(f), artifact_path="evaluation")
            mlflow.log_artifact(str(paths.metrics))
            client = mlflow.MlflowClient()
            for name, run_id in train_runs.items():
                if not run_id:
                    continue
                try:
                    for key in metrics_of_model(numbers, name, list(train_runs), params["evaluate"]):
                        client.log_metric(run_id, key, numbers[key])
                except Exception as err:  # the training run may live in another store (MLFLOW_TRACKING_URI changed)
                    print(f"cnnrnn: warning: test metrics not added to training run {run_id} ({err})", file=sys.stderr)
        if finish is not None:
            finish()
    return metrics
