"""The whole pipeline through real DVC, every application tiny, in a temporary copy of the project (run once: the
session's ``tiny_pipeline``); each test checks its part of what the one ``dvc repro`` made."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnrnn.config import compose, write_params
from cnnrnn.registry import tiny_overrides
from conftest import run_ok as run

# Every application tiny, so that a whole `dvc repro` (report included) stays quick.
TINY = tiny_overrides()


def test_tiny_dvc_repro_writes_metrics_plots_and_a_loadable_mlflow_model(tiny_pipeline):
    tiny_repo, cli_env = tiny_pipeline.root, tiny_pipeline.env
    metrics = json.loads((tiny_repo / "metrics/classify.json").read_text())
    assert {"test_accuracy", "test_macro_f1", "train_seconds", "n_test"} <= set(metrics)
    assert metrics["n_test"] == 1000
    for name in ("train_curves.csv", "confusion.csv", "per_class.csv", "confusion_matrix.png", "misclassified.png",
                 "feature_maps.png"):
        assert (tiny_repo / "plots/classify" / name).is_file(), name
    assert "test_accuracy" in (tiny_repo / "reports/report.md").read_text()
    assert "test_accuracy" in (tiny_repo / "reports/index.html").read_text()
    shown = run(["dvc", "metrics", "show"], tiny_repo, cli_env).stdout
    assert "test_accuracy" in shown

    import mlflow

    mlflow.set_tracking_uri(cli_env["MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs(experiment_names=["classify"])
    train = runs[runs["tags.cnnrnn.stage"] == "train"].iloc[0]
    assert train["params.train.max_epochs"] == "1"
    assert train["tags.data.checksum"].startswith("sha256:846f6cad")
    assert len(train["tags.git_commit"]) == 40
    assert "metrics.val_accuracy" in runs.columns and "metrics.test_accuracy" in runs.columns
    assert (runs["tags.cnnrnn.stage"] == "evaluate").sum() == 1
    history = mlflow.MlflowClient().get_metric_history(train["run_id"], "val_loss")
    assert [m.step for m in history] == [1]

    model = mlflow.pyfunc.load_model(f"runs:/{train['run_id']}/model")
    out = model.predict(np.zeros((2, 28, 28), dtype=np.uint8))
    assert list(out.columns)[:2] == ["label_1", "probability_1"] and len(out) == 2

    # Nothing changed: a second repro runs no stage.
    again = run(["dvc", "repro"], tiny_repo, cli_env).stdout
    assert "Running stage" not in again


@pytest.mark.parametrize("app", ["sentiment", "keyboard"])
def test_tiny_dvc_repro_of_each_text_app(app, tiny_pipeline):
    """fetch -> prepare -> one train stage per model -> evaluate through DVC; the MLflow model answers strings."""
    project_copy, cli_env, out = tiny_pipeline.root, tiny_pipeline.env, tiny_pipeline.output
    models = ("bow", "window", "cnn", "rnn") if app == "sentiment" else ("word", "char")
    assert all(f"{app}_train@{m}" in out for m in models)
    metrics = json.loads((project_copy / f"metrics/{app}.json").read_text())
    expected = {"test_accuracy", "val_accuracy", "rnn_contrast_seen_pair_accuracy", "bow_contrast_seen_pair_accuracy",
                "window_test_accuracy", "rnn_vs_bow_test_accuracy_difference_ci95_low"} \
        if app == "sentiment" else {"test_perplexity", "top3_accuracy", "keystroke_savings", "ngram_test_perplexity",
                                    "context_curve_k50", "char_val_loss", "val_top3_accuracy", "top3_accuracy_ci95_low",
                                    "word_vs_ngram_top3_accuracy_difference"}
    assert expected <= set(metrics)
    assert all((project_copy / f"models/{app}/{m}/model.pt").is_file() for m in models)

    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(cli_env["MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs(experiment_names=[app])
    trains = runs[runs["tags.cnnrnn.stage"] == "train"]
    assert sorted(trains["params.model_key"]) == sorted(models)
    train = trains[trains["params.model_key"] == models[-1 if app == "sentiment" else 0]].iloc[0]
    logged = Path(mlflow.artifacts.download_artifacts(run_id=train["run_id"], artifact_path="model"))
    assert list(logged.rglob("vocab.json")) or list(logged.rglob("chars.json"))  # the vocabulary travels with the model
    model = mlflow.pyfunc.load_model(f"runs:/{train['run_id']}/model")
    answer = model.predict(pd.DataFrame({"text": ["The food was good, not bad at all", "To be or not to"]}))
    assert len(answer) == 2 and ("suggestion_1" in answer.columns or f"{models[-1]}_probability" in answer.columns)


@pytest.mark.parametrize("app", ["detect", "localize"])
def test_tiny_dvc_repro_of_each_coco_app(app, tiny_pipeline):
    """fetch -> prepare -> train -> evaluate through DVC; metrics written; the MLflow model loads and predicts."""
    project_copy, cli_env = tiny_pipeline.root, tiny_pipeline.env
    metrics = json.loads((project_copy / f"metrics/{app}.json").read_text())
    expected = {"map", "map_50", "n_test_images", "train_seconds"} if app == "detect" else \
        {"test_accuracy", "mean_iou", "iou50_accuracy", "n_test"}
    assert expected <= set(metrics)

    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(cli_env["MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs(experiment_names=[app])
    train = runs[runs["tags.cnnrnn.stage"] == "train"].iloc[0]
    model = mlflow.pyfunc.load_model(f"runs:/{train['run_id']}/model")
    image = next((project_copy / f"data/{app}/prepared/test").iterdir())
    out = model.predict(pd.DataFrame({"path": [str(image)]}))
    assert "class" in out.columns


def test_failed_stage_keeps_earlier_outputs_and_the_mlflow_store(tiny_pipeline):
    """A broken source fails the fetch with a clear message; the earlier raw data and MLflow runs survive."""
    tiny_repo, cli_env = tiny_pipeline.root, tiny_pipeline.env
    raw_before = sorted(p.name for p in (tiny_repo / "data/classify/raw").iterdir())
    db = Path(cli_env["MLFLOW_TRACKING_URI"].removeprefix("sqlite:///"))
    db_size = db.stat().st_size
    committed = (tiny_repo / "params.yaml").read_text()
    params = compose(TINY, tiny_repo)
    params["classify"]["data"]["source"]["files"]["mnist_5k.csv.gz"] = "sha256:" + "0" * 64
    write_params(params, tiny_repo)
    try:
        done = subprocess.run([sys.executable, "-m", "cnnrnn.cli", "fetch", "classify"], cwd=tiny_repo, env=cli_env,
                              capture_output=True, text=True)
    finally:
        (tiny_repo / "params.yaml").write_text(committed)  # the shared project as it was
    assert done.returncode == 1 and "checksum mismatch" in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in (tiny_repo / "data/classify/raw").iterdir()) == raw_before
    assert db.stat().st_size == db_size
