"""MLflow's "model from code" entry point: MLflow runs this file to build the pyfunc model."""

import mlflow.models

from cnnrnn.pyfunc import CnnrnnModel

mlflow.models.set_model(CnnrnnModel())
