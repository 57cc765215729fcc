"""One MLflow pyfunc model for every application, logged as "model from code" (nothing pickled).

The logged artifact is the application's model directory; loading dispatches to
``cnnrnn.<app>.predict.load`` and ``predict_frame``, so
``mlflow.pyfunc.load_model(uri).predict(...)`` answers what ``cnnrnn predict <app>`` does.

The ``cnnrnn`` package itself travels with the model (MLflow ``code_paths``: ``code/cnnrnn``
in the artifact, put first on ``sys.path`` before the entry point runs), so the model loads
wherever its pip requirements are installed, without this checkout.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

import mlflow.pyfunc

PACKAGE_DIR = Path(__file__).resolve().parent
ENTRY_POINT = PACKAGE_DIR / "pyfunc_entry.py"

# What the predict modules import, with pyproject.toml's ranges. Written by hand: MLflow's
# requirement inference imports the model and takes many seconds. mlflow itself is added by MLflow.
PIP_REQUIREMENTS = ["torch>=2.4,<2.15", "numpy>=1.26", "pandas>=2.0", "pillow>=10", "sentencepiece>=0.2", "pretty_midi>=0.2.10"]


class CnnrnnModel(mlflow.pyfunc.PythonModel):
    """Loads ``artifacts['model_dir']`` with the predict part of ``model_config['app']`` (see :mod:`cnnrnn.registry`)."""

    def load_context(self, context):
        from cnnrnn.registry import application

        self._predict = application(context.model_config["app"]).part("predict")
        self.model = self._predict.load(Path(context.artifacts["model_dir"]))


def _predict(self, context, model_input, params=None):
    """A DataFrame, an array or a list in; the application's ``predict_frame`` answer out."""
    return self._predict.predict_frame(self.model, model_input)


# Attached after the class is made: MLflow checks `predict` for type hints when the class is defined and warns
# on every import when it has none (ours takes a DataFrame or an array on purpose), overriding warning filters.
CnnrnnModel.predict = _predict


def log_model(mlflow, app: str, model_dir: Path):
    """Log the files of ``model_dir`` (not its checkpoints) and the ``cnnrnn`` code as a pyfunc model named ``model``."""
    with tempfile.TemporaryDirectory(prefix="cnnrnn-model-") as tmp:
        export = Path(tmp) / app
        export.mkdir()
        for path in Path(model_dir).iterdir():
            if path.is_file():
                shutil.copy2(path, export / path.name)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*type hints.*")
            return mlflow.pyfunc.log_model(
                name="model",
                python_model=str(ENTRY_POINT),
                model_config={"app": app},
                artifacts={"model_dir": str(export)},
                code_paths=[str(PACKAGE_DIR)],  # copied without __pycache__
                pip_requirements=PIP_REQUIREMENTS,
            )
