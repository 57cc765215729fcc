"""Lightning's DDP: classify on 2 CPU processes (gloo) against 1 process, on the real MNIST-5k data at a small size.

The two runs see the same global batch (2 x 32 against 1 x 64), so the same number of optimizer steps with the same
schedule; what differs is the order of the examples and the sums' rounding. TOLERANCE is about twice the half-width of
the 95% interval of one run's test accuracy on the 1,000 test digits.
"""

from __future__ import annotations

import json
import sys

from cnnrnn.config import compose, write_params
from conftest import run_ok as run

SMALL = ["classify.train.max_epochs=2", "classify.model.channels=[8,16]", "classify.model.hidden=32"]
TOLERANCE = 0.03


def train_and_evaluate(root, env, overrides: list[str]) -> dict:
    write_params(compose(SMALL + overrides, root), root)
    for stage in ("train", "evaluate"):
        run([sys.executable, "-m", "cnnrnn.cli", stage, "classify"], root, env)
    return json.loads((root / "metrics/classify.json").read_text())


def test_two_ddp_processes_reach_the_accuracy_of_one(project_copy, cli_env):
    write_params(compose(SMALL, project_copy), project_copy)
    for stage in ("fetch", "prepare"):
        run([sys.executable, "-m", "cnnrnn.cli", stage, "classify"], project_copy, cli_env)
    one = train_and_evaluate(project_copy, cli_env, ["classify.train.batch_size=64"])
    two = train_and_evaluate(project_copy, cli_env, ["trainer=ddp", "classify.train.batch_size=32"])
    print(f"1 process: test_accuracy {one['test_accuracy']}, {one['train_samples_per_second']} images/s; "
          f"2 DDP processes: {two['test_accuracy']}, {two['train_samples_per_second']} images/s")
    assert abs(one["test_accuracy"] - two["test_accuracy"]) <= TOLERANCE
    assert two["test_accuracy"] > 0.8  # it learned: 2 epochs of the small CNN

    import mlflow

    mlflow.set_tracking_uri(cli_env["MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs(experiment_names=["classify"])
    train = runs[runs["tags.cnnrnn.stage"] == "train"]
    assert len(train) == 2  # rank 1 of the DDP run logged nothing
    assert sorted(train["params.train.strategy"]) == ["auto", "ddp"]
