"""The logged MLflow model loads and predicts in a Python where this checkout's ``cnnrnn`` is not importable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from packaging.requirements import Requirement

from cnnrnn.pyfunc import PIP_REQUIREMENTS, log_model

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

# Runs in a fresh interpreter: first make this checkout unimportable (the venv's editable install is
# a .pth path entry to src/; newer setuptools use an __editable__ finder instead), then load and predict.
LOAD_ELSEWHERE = r"""
import json, os, sys
src = os.path.realpath(sys.argv[1])
sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != src]
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
try:
    import cnnrnn
except ModuleNotFoundError:
    pass
else:
    sys.exit(f"cnnrnn is still importable from {cnnrnn.__file__}")

import mlflow.pyfunc
import pandas as pd

model = mlflow.pyfunc.load_model(sys.argv[2])
out = model.predict(pd.DataFrame({"text": json.loads(sys.argv[3])}))
import cnnrnn
print(json.dumps({"cnnrnn_file": cnnrnn.__file__, "rows": out.to_dict("records")}))
"""


@pytest.fixture
def sentiment_model_dir(tmp_path: Path) -> Path:
    """A real sentiment bag-of-words model, saved by the real ``save_model``, with weights set by hand:
    "good" +4, "bad" -4, so the right answers are known."""
    from cnnrnn.sentiment.model import SentimentClassifier, save_model
    from cnnrnn.text import Vocabulary

    prepared = tmp_path / "prepared"
    prepared.mkdir()
    vocabulary = Vocabulary(["<pad>", "<unk>", "good", "bad", "movie", "a"])
    vocabulary.save(prepared / "vocab.json")
    module = SentimentClassifier({"kind": "bow", "binary": True}, {}, len(vocabulary))
    with torch.no_grad():
        module.network.linear.weight.zero_()
        module.network.linear.weight[0, vocabulary.index["good"]] = 4.0
        module.network.linear.weight[0, vocabulary.index["bad"]] = -4.0
        module.network.linear.bias.zero_()
    model_dir = tmp_path / "models" / "sentiment"
    model_dir.mkdir(parents=True)
    save_model(module, model_dir, SimpleNamespace(prepared=prepared), {"model_key": "bow"})
    return model_dir


def test_logged_model_loads_and_predicts_without_the_checkout(tmp_path, sentiment_model_dir, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # here and in the subprocess
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    # Artifacts beside the store, not in ./mlruns of the working directory.
    experiment = mlflow.create_experiment("sentiment", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        info = log_model(mlflow, "sentiment", sentiment_model_dir)

    local = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path / "downloaded")))
    shipped = local / "code" / "cnnrnn"
    assert (shipped / "sentiment" / "predict.py").is_file() and (shipped / "pyfunc.py").is_file()
    assert not list(shipped.rglob("__pycache__"))
    requirements = {Requirement(line) for line in (local / "requirements.txt").read_text().split()}
    assert {r.name for r in requirements} == {"mlflow", "torch", "numpy", "pandas", "pillow", "sentencepiece", "pretty_midi"}  # no cnnrnn pin

    texts = ["A good movie", "a bad movie", "good"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = subprocess.run([sys.executable, "-c", LOAD_ELSEWHERE, str(SRC), info.model_uri, json.dumps(texts)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert not Path(result["cnnrnn_file"]).resolve().is_relative_to(SRC)  # the model's own copy ran
    assert [r["text"] for r in result["rows"]] == texts
    assert [r["bow_label"] for r in result["rows"]] == ["positive", "negative", "positive"]
    p = torch.sigmoid(torch.tensor(4.0)).item()
    assert [r["bow_probability"] for r in result["rows"]] == [round(p, 4), round(1 - p, 4), round(p, 4)]


def test_pip_requirements_are_pyproject_dependencies_that_the_installed_versions_meet():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for line in PIP_REQUIREMENTS:
        assert line in dependencies, f"{line!r} is not in pyproject.toml's dependencies {dependencies}"
        requirement = Requirement(line)
        assert requirement.specifier.contains(version(requirement.name)), line
