"""One MLflow pyfunc model for every application, logged as "model from code" (nothing pickled).

The logged artifact is the application's model directory; loading dispatches to
``cnnrnn.<app>.predict.load`` and ``predict_frame``, so
``mlflow.pyfunc.load_model(uri).predict(...)`` answers what ``cnnrnn predict <app>`` does.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
import warnings
from pathlib import Path

import mlflow.pyfunc

ENTRY_POINT = Path(__file__).with_name("pyfunc_entry.py")


class CnnrnnModel(mlflow.pyfunc.PythonModel):
    """Loads ``artifacts['model_dir']`` with the predict module of ``model_config['app']``."""

    def load_context(self, context):
        self._predict = importlib.import_module(f"cnnrnn.{context.model_config['app']}.predict")
        self.model = self._predict.load(Path(context.artifacts["model_dir"]))

    def predict(self, context, model_input, params=None):
        return self._predict.predict_frame(self.model, model_input)


def log_model(mlflow, app: str, model_dir: Path):
    """Log the files of ``model_dir`` (not its checkpoints) as a pyfunc model named ``model``."""
    import cnnrnn

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
                # Pinned by hand: MLflow's requirement inference imports the model and takes many seconds.
                pip_requirements=[f"cnnrnn=={cnnrnn.__version__}", "torch", "pillow", "pandas"],
            )
