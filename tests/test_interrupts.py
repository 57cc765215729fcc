"""Interrupted work resumes and nothing is lost: real processes, real SIGKILLs at deterministic points.

The processes kill themselves where ``CNNRNN_TEST_KILL_AT`` says (see :mod:`cnnrnn.atomic`): after a
training epoch's checkpoint, halfway through writing a file, or inside a stage's commit; or wait where
``CNNRNN_TEST_PAUSE_AT`` says until the test lets them go. No sleeps decide anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cnnrnn.config import compose, load_params, write_params
from cnnrnn.registry import tiny_overrides
from cnnrnn.verification import is_ignored
from conftest import commit_all, run_ok

THREE_EPOCHS = ["classify.train.max_epochs=3"]


def run(cmd: list[str], cwd: Path, env: dict, kill_at: str | None = None, expect: int = 0) -> subprocess.CompletedProcess:
    return run_ok(cmd, cwd, {**env, "CNNRNN_TEST_KILL_AT": kill_at} if kill_at else env, expect)


def cnnrnn(*args: str) -> list[str]:
    return [sys.executable, "-m", "cnnrnn.cli", *args]


KILLED = -signal.SIGKILL


def tiny_project(project_copy: Path, overrides: list[str], apps: list[str], git: bool = False) -> Path:
    write_params(compose(tiny_overrides(apps) + overrides, project_copy), project_copy)
    if git:
        commit_all(project_copy, dict(os.environ))
    return project_copy


def without_timing(metrics: dict) -> dict:
    """What `cnnrnn verify` compares: every metric but timings and the machine fingerprint."""
    return {k: v for k, v in metrics.items() if not is_ignored(k)}


def digests(root: Path, relative: list[str]) -> dict[str, str]:
    return {r: hashlib.sha256((root / r).read_bytes()).hexdigest() for r in relative}


def mlflow_runs(env: dict, app: str):
    import mlflow

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    return mlflow.search_runs(experiment_names=[app])


def steps(env: dict, run_id: str, key: str = "val_loss") -> list[int]:
    import mlflow

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    return [m.step for m in mlflow.MlflowClient().get_metric_history(run_id, key)]


def test_classify_killed_after_epoch_1_under_dvc_resumes_to_the_uninterrupted_metrics(project_copy, cli_env):
    """SIGKILL after epoch 1 of 3 inside `dvc repro`; the next `dvc repro` resumes and ends with the metrics of a run
    never interrupted; MLflow shows the killed run KILLED, linked to the run that finished it, curves without repeats."""
    root = tiny_project(project_copy, THREE_EPOCHS, ["classify"], git=True)
    run(["dvc", "repro", "classify_train"], root, cli_env, kill_at="train:epoch:1", expect=255)
    assert list(root.glob(".cache/checkpoints/classify_train/*/last.ckpt"))
    resumed = run(["dvc", "repro", "classify_evaluate"], root, cli_env)
    assert "classify_train: resuming after epoch 1 of 3" in resumed.stdout + resumed.stderr
    assert not (root / ".cache/checkpoints/classify_train").exists()  # removed once the model is in place
    after_resume = json.loads((root / "metrics/classify.json").read_text())
    curves = (root / "plots/classify/train_curves.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in curves] == ["epoch", "1", "2", "3"]

    run(cnnrnn("train", "classify"), root, cli_env)  # the same training, never interrupted
    run(cnnrnn("evaluate", "classify"), root, cli_env)
    uninterrupted = json.loads((root / "metrics/classify.json").read_text())
    assert without_timing(after_resume) == without_timing(uninterrupted)
    assert "test_accuracy" in without_timing(uninterrupted)

    runs = mlflow_runs(cli_env, "classify")
    assert "RUNNING" not in set(runs["status"])
    train = runs[runs["tags.cnnrnn.stage"] == "train"].set_index("run_id")
    killed = train[train["status"] == "KILLED"]
    assert len(killed) == 1
    killed_id = killed.index[0]
    continued = train[train["tags.cnnrnn.resumed_from_run"] == killed_id]
    assert len(continued) == 1 and continued.iloc[0]["status"] == "FINISHED"
    assert killed.iloc[0]["tags.cnnrnn.resumed_by_run"] == continued.index[0]
    assert steps(cli_env, killed_id) == [1] and steps(cli_env, continued.index[0]) == [2, 3]

    import mlflow

    models = mlflow.search_logged_models(experiment_ids=list(set(runs["experiment_id"])), output_format="list")
    # a model is logged only by a run that finished: the resumed one and the uninterrupted one
    assert sorted(m.source_run_id for m in models) == sorted(train.index[train["status"] == "FINISHED"])


def test_keyboard_word_model_killed_after_epoch_1_resumes_to_the_same_weights(project_copy, cli_env):
    """The RNN app whose recurrent state is carried from batch to batch: a resumed run ends with the uninterrupted
    run's weights, bit for bit, and the same validation curve."""
    root = tiny_project(project_copy, ["keyboard.models.word.train.max_epochs=3"], ["keyboard"])
    for stage in ("fetch", "prepare"):
        run(cnnrnn(stage, "keyboard"), root, cli_env)
    run(cnnrnn("train", "keyboard", "--model", "word"), root, cli_env, kill_at="train:epoch:1", expect=KILLED)
    resumed = run(cnnrnn("train", "keyboard", "--model", "word"), root, cli_env)
    assert "keyboard_train@word: resuming after epoch 1 of 3" in resumed.stderr
    model = root / "models/keyboard/word/model.pt"
    curves = root / "plots/keyboard/word/train_curves.csv"
    after_resume, curves_after_resume = torch.load(model, weights_only=False)["state_dict"], curves.read_text()

    run(cnnrnn("train", "keyboard", "--model", "word"), root, cli_env)
    uninterrupted = torch.load(model, weights_only=False)["state_dict"]
    assert after_resume.keys() == uninterrupted.keys()
    assert all(torch.equal(after_resume[k], uninterrupted[k]) for k in uninterrupted)

    def val_columns(text: str) -> list[list[str]]:
        rows = [line.split(",") for line in text.splitlines()]
        keep = [i for i, name in enumerate(rows[0]) if not name.startswith("samples")]
        return [[row[i] for i in keep] for row in rows]

    assert val_columns(curves_after_resume) == val_columns(curves.read_text())
    assert "RUNNING" not in set(mlflow_runs(cli_env, "keyboard")["status"])


def test_ctrl_c_then_a_kill_resume_and_a_changed_param_starts_over(project_copy, cli_env, tmp_path):
    """SIGINT (Ctrl-C) after epoch 1: exit 130, MLflow says KILLED, the checkpoint stays. The rerun resumes (and is
    SIGKILLed after epoch 2). Then a param changes: training starts over, with a clear message."""
    root = tiny_project(project_copy, THREE_EPOCHS, ["classify"])
    for stage in ("fetch", "prepare"):
        run(cnnrnn(stage, "classify"), root, cli_env)
    go = tmp_path / "go"
    env = {**cli_env, "CNNRNN_TEST_PAUSE_AT": "train:epoch:1", "CNNRNN_TEST_PAUSE_FILE": str(go)}
    # Ctrl-C as a terminal sends it, even where this test runs in the background (which starts it with SIGINT ignored)
    training = subprocess.Popen(cnnrnn("train", "classify"), cwd=root, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 600
    while not Path(f"{go}.waiting").exists():
        assert training.poll() is None and time.monotonic() < deadline, training.communicate()
        time.sleep(0.1)
    training.send_signal(signal.SIGINT)
    _, stderr = training.communicate(timeout=600)
    assert training.returncode == 130 and "interrupted" in stderr, stderr
    assert sorted(mlflow_runs(cli_env, "classify")["status"]) == ["KILLED"]

    again = run(cnnrnn("train", "classify"), root, cli_env, kill_at="train:epoch:2", expect=KILLED)
    assert "resuming after epoch 1 of 3" in again.stderr
    stale = list(root.glob(".cache/checkpoints/classify_train/*/last.ckpt"))
    assert len(stale) == 1

    params = load_params(root)
    params["classify"]["train"]["lr"] = params["classify"]["train"]["lr"] / 2
    write_params(params, root)
    again = run(cnnrnn("train", "classify"), root, cli_env)
    assert "was made with other params, data or code and cannot be resumed; training starts over" in again.stderr
    assert "resuming" not in again.stderr
    assert not stale[0].exists() and not (root / ".cache/checkpoints/classify_train").exists()
    runs = mlflow_runs(cli_env, "classify")
    assert sorted(runs["status"]) == ["FINISHED", "KILLED", "KILLED"]
    assert steps(cli_env, runs[runs["status"] == "FINISHED"]["run_id"].iloc[0]) == [1, 2, 3]


def test_a_killed_training_that_dvc_restores_from_its_run_cache_is_marked_killed(project_copy, cli_env):
    """`dvc repro` trains (and DVC caches the run); a forced rerun is SIGKILLed after epoch 1; the next plain
    `dvc repro` restores the stage from DVC's run cache, so no training starts and the killed run is still RUNNING.
    The next cnnrnn command (`cnnrnn summary`, which `make repro` runs after `dvc repro`) marks it KILLED, loading
    MLflow in a child process only; a run that ended is left alone."""
    root = tiny_project(project_copy, THREE_EPOCHS, ["classify"], git=True)
    run(["dvc", "repro", "classify_train"], root, cli_env)
    run(["dvc", "repro", "--force", "--single-item", "classify_train"], root, cli_env, kill_at="train:epoch:1",
        expect=255)
    assert sorted(mlflow_runs(cli_env, "classify")["status"]) == ["FINISHED", "RUNNING"]
    restored = run(["dvc", "repro", "classify_train"], root, cli_env)
    assert "resuming" not in restored.stdout + restored.stderr and "checking out" in restored.stdout
    assert sorted(mlflow_runs(cli_env, "classify")["status"]) == ["FINISHED", "RUNNING"]

    summary = run(cnnrnn("summary"), root, cli_env)
    assert "left RUNNING by a killed process; marked KILLED" in summary.stderr
    runs = mlflow_runs(cli_env, "classify")
    assert sorted(runs["status"]) == ["FINISHED", "KILLED"]
    assert "marked KILLED" not in run(cnnrnn("summary"), root, cli_env).stderr  # once


def test_prepare_killed_mid_write_leaves_the_old_prepared_data(project_copy, cli_env):
    root = tiny_project(project_copy, [], ["classify"])
    run(cnnrnn("fetch", "classify"), root, cli_env)
    run(cnnrnn("prepare", "classify"), root, cli_env)
    prepared = root / "data/classify/prepared"
    names = sorted(p.name for p in prepared.iterdir())
    before, before_info = digests(prepared, names), (prepared / "info.json").read_text()

    params = load_params(root)
    params["classify"]["data"]["val_fraction"] = 0.2
    write_params(params, root)
    run(cnnrnn("prepare", "classify"), root, cli_env, kill_at="prepare:staged", expect=KILLED)
    assert sorted(p.name for p in prepared.iterdir()) == names and digests(prepared, names) == before

    run(cnnrnn("prepare", "classify"), root, cli_env)
    assert json.loads((prepared / "info.json").read_text())["sizes"]["val"] != json.loads(before_info)["sizes"]["val"]
    assert digests(prepared, names) != before
    assert sorted(p.name for p in prepared.parent.iterdir()) == ["prepared", "raw"]  # the killed run's staging is gone


EVALUATE_OUTPUTS = ["metrics/classify.json", *(f"plots/classify/{n}" for n in
                    ("confusion.csv", "per_class.csv", "confusion_matrix.png", "misclassified.png", "feature_maps.png"))]


@pytest.fixture
def evaluated_classify(project_copy, cli_env) -> Path:
    root = tiny_project(project_copy, [], ["classify"])
    for stage in ("fetch", "prepare", "train", "evaluate"):
        run(cnnrnn(stage, "classify"), root, cli_env)
    params = load_params(root)
    params["classify"]["evaluate"]["misclassified_shown"] = 4  # another picture, so new outputs differ from old
    write_params(params, root)
    return root


def test_evaluate_killed_mid_write_leaves_the_old_outputs_and_inside_its_commit_the_new(evaluated_classify, cli_env):
    """Killed while writing (or with everything staged): every old output stays. Killed halfway through moving its
    outputs into place: the journal makes the next `cnnrnn` command finish the move. No evaluation stays RUNNING."""
    root = evaluated_classify
    before = digests(root, EVALUATE_OUTPUTS)
    for point in ("write:classify.json", "classify_evaluate:staged"):
        run(cnnrnn("evaluate", "classify"), root, cli_env, kill_at=point, expect=KILLED)
        assert digests(root, EVALUATE_OUTPUTS) == before, point

    run(cnnrnn("evaluate", "classify"), root, cli_env, kill_at="classify_evaluate:committing", expect=KILLED)
    assert (root / ".cache/commits/classify_evaluate.json").is_file()
    done = run(cnnrnn("report"), root, cli_env)
    assert "finished moving the outputs of classify_evaluate into place" in done.stderr
    assert not (root / ".cache/commits/classify_evaluate.json").exists()
    after = digests(root, EVALUATE_OUTPUTS)
    assert all(after[r] != before[r] for r in ("plots/classify/misclassified.png", "metrics/classify.json"))
    assert json.loads((root / "metrics/classify.json").read_text())["n_test"] == 1000
    assert not list((root / ".cache").glob("stage-*"))  # the killed runs' staging folders are gone

    run(cnnrnn("evaluate", "classify"), root, cli_env)
    runs = mlflow_runs(cli_env, "classify")
    evaluations = runs[runs["tags.cnnrnn.stage"] == "evaluate"]
    assert sorted(evaluations["status"]) == ["FINISHED", "FINISHED", "KILLED", "KILLED", "KILLED"]


def test_a_second_dvc_repro_gets_the_lock_error_and_two_predicts_run_at_once(project_copy, cli_env, tmp_path):
    root = tiny_project(project_copy, [], ["classify"], git=True)
    go = tmp_path / "go"
    env = {**cli_env, "CNNRNN_TEST_PAUSE_AT": "prepare:staged", "CNNRNN_TEST_PAUSE_FILE": str(go)}
    first = subprocess.Popen(["dvc", "repro", "classify_prepare"], cwd=root, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 600
        while not Path(f"{go}.waiting").exists():
            assert first.poll() is None, first.communicate()[0]
            assert time.monotonic() < deadline, "the first dvc repro never reached prepare"
            time.sleep(0.1)
        second = subprocess.run(["dvc", "repro", "classify_prepare"], cwd=root, env=cli_env, capture_output=True, text=True)
        assert second.returncode != 0 and "lock" in (second.stdout + second.stderr).lower()
    finally:
        go.touch()
        output = first.communicate(timeout=600)[0]
    assert first.returncode == 0, output
    assert "classify_prepare" not in run(["dvc", "status", "classify_prepare"], root, cli_env).stdout

    run(cnnrnn("train", "classify"), root, cli_env)
    import numpy as np
    from PIL import Image

    images = torch.load(root / "data/classify/prepared/test.pt", weights_only=False)["images"][:4]
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"digit{i}.png")
        Image.fromarray(np.asarray(image.squeeze(), dtype=np.uint8)).save(paths[-1])
    both = [subprocess.Popen(cnnrnn("predict", "classify", "--json", *map(str, paths)), cwd=root, env=cli_env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in both]
    assert [p.returncode for p in both] == [0, 0], outputs
    assert outputs[0][0] == outputs[1][0] and outputs[0][0].strip()


def test_a_killed_fetch_leaves_its_partial_download_for_the_next_one(project_copy):
    """SIGKILL runs no cleanup: the next fetch finds the .part in the dead fetch's staging folder and resumes it."""
    from cnnrnn import stages

    folder = project_copy / "data/classify"
    dead = folder / ".raw-killed"
    dead.mkdir(parents=True)
    (dead / "archive.tar.gz.part").write_bytes(b"half")
    staging = folder / ".raw-new"
    staging.mkdir()
    stages.keep_partial_downloads(folder, staging)
    assert (staging / "archive.tar.gz.part").read_bytes() == b"half" and not dead.exists()


def test_a_commit_killed_after_swapping_a_folder_is_not_swapped_back(tmp_path, monkeypatch):
    """The exchange leaves the old folder at the staged path until it is deleted; recovery knows it by its inode."""
    from cnnrnn import atomic

    (tmp_path / "out").mkdir()
    (tmp_path / "out/a.txt").write_text("old")
    staged = atomic.StagedOutputs(tmp_path, "demo_evaluate", folders=("out",))
    staged.path("out").mkdir()
    staged.path("out/a.txt").write_text("new")
    staged.path("metrics.json").write_text("{}")
    monkeypatch.setattr(atomic, "_apply", lambda root, journal: None)  # "killed" right after the journal
    staged.commit()
    assert atomic._exchange(staged.path("out"), tmp_path / "out")  # ... and after the folder's swap
    monkeypatch.undo()
    assert atomic.recover(tmp_path, "demo_evaluate") is True
    assert (tmp_path / "out/a.txt").read_text() == "new" and (tmp_path / "metrics.json").is_file()
    assert not staged.staging.exists() and not list((tmp_path / ".cache/commits").glob("*.json"))
