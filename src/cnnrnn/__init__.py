"""cnnrnn: the classic CNN and RNN applications, reproduced end to end.

Importing this package is cheap on purpose: stages that do not train (fetch, prepare,
report) must not pay for Lightning or MLflow, so those are imported only inside the
modules that train, evaluate or log. The applications and the protocol they follow are
listed in :mod:`cnnrnn.registry`.
"""

__version__ = "0.1.0"
