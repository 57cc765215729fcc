"""A team's MLflow: PostgreSQL (pgserver) and ``mlflow server`` with its artifact store, started here on 127.0.0.1.

Two real trainings log to it at the same time; MlflowClient reads everything back.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest

from cnnrnn import team_server
from cnnrnn.config import compose, write_params
from conftest import run_ok as run

EPOCHS = 2
SMALL = [f"classify.train.max_epochs={EPOCHS}", "classify.train.limit_train_batches=6", "classify.train.limit_val_batches=2",
         "classify.model.channels=[8,16]", "classify.model.hidden=16"]


@pytest.fixture
def mlflow_server(tmp_path):
    started = time.perf_counter()
    postgres, backend = team_server.start_postgres(tmp_path / "postgres")
    database_seconds = time.perf_counter() - started
    server = None
    try:
        server, url = team_server.start_mlflow_server(backend, tmp_path / "artifacts", log=tmp_path / "server.log")
        print(f"PostgreSQL up in {database_seconds:.1f} s, mlflow server in {time.perf_counter() - started:.1f} s")
        yield url, tmp_path / "artifacts"
    finally:
        if server is not None:
            team_server.stop(server)
        postgres.cleanup()


def test_two_trainings_logging_at_once_lose_nothing(mlflow_server, project_copy, cli_env):
    url, artifacts = mlflow_server
    env = {**cli_env, "MLFLOW_TRACKING_URI": url}
    write_params(compose(SMALL, project_copy), project_copy)
    for stage in ("fetch", "prepare"):
        run([sys.executable, "-m", "cnnrnn.cli", stage, "classify"], project_copy, env)
    teammate = project_copy.parent / "teammate"  # a second checkout with its own setting
    shutil.copytree(project_copy, teammate, symlinks=True)
    write_params(compose([*SMALL, "classify.train.lr=0.001"], teammate), teammate)

    started = time.perf_counter()
    trainings = [subprocess.Popen([sys.executable, "-m", "cnnrnn.cli", "train", "classify"], cwd=root, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for root in (project_copy, teammate)]
    try:
        outputs = [t.communicate(timeout=600) for t in trainings]
    finally:
        for training in trainings:
            if training.poll() is None:
                training.kill()
    assert [t.returncode for t in trainings] == [0, 0], [err[-3000:] for _, err in outputs]
    print(f"two trainings at once: {time.perf_counter() - started:.1f} s")

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=url)
    experiment = client.get_experiment_by_name("classify")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    assert sorted(r.data.params["train.lr"] for r in runs) == ["0.001", "0.003"]
    for run_ in runs:
        for metric in ("train_loss", "val_loss", "val_accuracy", "samples_per_second"):
            steps = [m.step for m in client.get_metric_history(run_.info.run_id, metric)]
            assert steps == list(range(1, EPOCHS + 1)), (metric, steps)
        assert run_.info.artifact_uri.startswith("mlflow-artifacts:/")  # uploaded through the server
        model = client.search_logged_models([experiment.experiment_id],
                                            filter_string=f"source_run_id = '{run_.info.run_id}'")
        assert len(model) == 1
        assert any(artifacts.rglob("MLmodel"))  # in the server's --artifacts-destination
    assert len(list(artifacts.rglob("MLmodel"))) == 2

    # what one logged value costs with two writers at once (printed, never asserted: timed by --bench)
    measured = team_server.round_trips(url, writers=2, values=20)
    print(measured)
    assert measured["values_lost"] == 0
