"""What the image applications' models (classify, detect, localize) share: how a module is built from
the training images, the record ``model.pt`` keeps, and the loaded model that prediction uses.

Every image network is built from (model config, channels, classes, image side, per-channel mean
and std of the training images); ``model.pt`` keeps those with the weights and the ``predict``
settings (see :mod:`cnnrnn.model_file`). Torch only: prediction loads without Lightning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from cnnrnn.image_files import read_square_image
from cnnrnn.model_file import read_model_file, rebuild
from cnnrnn.normalization import channel_stats

# (model config, channels, number of classes, image side, mean, std) -> the plain nn.Module
BuildNetwork = Callable[[dict, int, int, int, list, list], Any]


def image_module(module_class, params: dict[str, Any], datamodule):
    """``module_class(model_cfg, train_cfg, classes, image_shape, mean, std)`` for the prepared training images."""
    info = datamodule.info
    mean, std = channel_stats(datamodule.datasets["train"].tensors[0])
    return module_class(params["model"], params["train"], info["classes"], info["image_shape"], mean, std)


def image_model_record(app: str, module, predict_cfg: dict[str, Any]) -> dict[str, Any]:
    """What ``model.pt`` holds for an image application: plain values and the network's weights."""
    hp = module.hparams
    return {"app": app, "model_cfg": dict(hp.model_cfg), "classes": list(hp.classes),
            "image_shape": list(hp.image_shape), "mean": list(hp.mean), "std": list(hp.std),
            "predict": dict(predict_cfg), "state_dict": module.network.state_dict()}


class LoadedImageModel:
    """A trained image network from ``model.pt``: ``classes``, ``image_shape`` (C, H, W), ``settings`` (the
    saved ``predict`` settings) and ``network`` (in eval mode). A missing, corrupt or foreign file is a
    :class:`~cnnrnn.errors.UserError` saying what to rerun."""

    def __init__(self, path: Path, app: str, build: BuildNetwork):
        retrain = f"dvc repro {app}_train"
        saved = read_model_file(path, app, retrain)
        self.classes: list[str] = saved["classes"]
        self.image_shape: list[int] = saved["image_shape"]
        self.settings: dict = saved["predict"]
        channels, size, _ = self.image_shape
        self.network = rebuild(path, saved, lambda s: build(s["model_cfg"], channels, len(self.classes), size,
                                                            s["mean"], s["std"]), retrain)

    def read_image(self, path: Path):
        """An image file -> ((C, S, S) tensor in [0, 1], (width, height) of the file)."""
        return read_square_image(path, self.image_shape[0], self.image_shape[1])
