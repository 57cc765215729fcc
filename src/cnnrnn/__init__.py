"""cnnrnn: the classic CNN and RNN applications, reproduced end to end.

Importing this package is cheap on purpose: stages that do not train (fetch, prepare,
report) must not pay for Lightning or MLflow, so those are imported only inside the
modules that train, evaluate or log.
"""

APPLICATIONS = ("classify", "detect", "localize", "stylize", "sentiment", "keyboard", "translate", "compose")
IMPLEMENTED = ("classify", "detect", "localize", "sentiment", "keyboard")
__version__ = "0.1.0"
