"""MLflow's "model from code" entry point: MLflow runs this file to build the pyfunc model.

``cnnrnn`` imports here even where it is not installed: the model's ``code/`` folder, which holds
the package, is first on ``sys.path`` when MLflow runs this file.
"""

import mlflow.models

from cnnrnn.pyfunc import CnnrnnModel

mlflow.models.set_model(CnnrnnModel())
