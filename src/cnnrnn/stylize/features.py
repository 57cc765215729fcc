"""Feature networks for style transfer: what "style" and "content" mean, measured in features.

A *loss network* turns an image into feature maps at several levels. The style of an image is
the centred Gram matrix (the covariance of the channels over all positions) of each level; its
content is the feature map of one level. Three loss networks, chosen by ``stylize.loss.network``:

- ``random_pyramid``: random multi-scale convolution filters (Ustyuzhaninov et al., ICLR 2017):
  one layer of random filters on each level of an image pyramid, so coarse levels see large
  structures with small kernels;
- ``patch_cnn``: a small CNN the train stage fits itself on the training photographs and the style
  images, to tell which image a patch comes from (it learns colour and texture features);
- ``vgg19``: the project's own VGG-19 with the ImageNet weights file (online; see ``conf/``).

The *evaluation* network (:func:`evaluation_network`) is another, fixed one: a deep random
network of its own seed and shape, so no method is graded by the network it optimized.
Torch only (no Lightning, no MLflow).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# Inputs are images in [0, 1]; every feature network centres them like this first.
PIXEL_MEAN = (0.485, 0.456, 0.406)
PIXEL_STD = (0.229, 0.224, 0.225)


def centred_gram(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C): the covariance of the C channels over the H*W positions.

    Centring removes each channel's mean, so a change of overall colour or brightness alone
    moves the Gram matrix of the first level only through the channels' co-variation.
    """
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    flat = flat - flat.mean(dim=2, keepdim=True)
    return flat @ flat.transpose(1, 2) / (h * w)


def plain_gram(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C): Gatys' Gram matrix, F F^T / (H W), means included: what a style *loss* uses,
    so the style's average colour and feature levels are part of what the output must take."""
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (h * w)


def level_distances(grams: list[torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
    """||G - T||^2 / ||T||^2 of each level, per image: (B, levels)."""
    return torch.stack([(g - t).pow(2).sum(dim=(1, 2)) / t.pow(2).sum(dim=(1, 2)).clamp_min(1e-12)
                        for g, t in zip(grams, targets)], dim=1)


def style_distance(grams: list[torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
    """Mean over levels of ||G - T||^2 / ||T||^2 (each level weighs the same), per image: (B,)."""
    return level_distances(grams, targets).mean(dim=1)


class FeatureNetwork(nn.Module):
    """Images (B, 3, H, W) in [0, 1] -> a list of feature maps, one per level (frozen, eval mode)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1))
        self.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1))

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.pixel_mean) / self.pixel_std

    def freeze(self) -> "FeatureNetwork":
        for p in self.parameters():
            p.requires_grad_(False)
        return self.eval()

    def grams(self, images: torch.Tensor) -> list[torch.Tensor]:
        return [centred_gram(f) for f in self(images)]


class RandomPyramid(FeatureNetwork):
    """One layer of random filters (``filters`` of size ``kernel``) on each of ``levels`` levels of an image
    pyramid (each half the side of the last), ReLU after; weights drawn from ``seed``."""

    def __init__(self, levels: int = 4, filters: int = 64, kernel: int = 5, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.convs = nn.ModuleList()
        for _ in range(levels):
            conv = nn.Conv2d(3, filters, kernel, padding=kernel // 2, padding_mode="reflect")
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * (2 / (3 * kernel * kernel)) ** 0.5)
                conv.bias.zero_()
            self.convs.append(conv)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.normalize(images)
        out = []
        for level, conv in enumerate(self.convs):
            if level:
                x = F.avg_pool2d(x, 2)
            out.append(F.relu(conv(x)))
        return out


def _vgg_stages(channels: list[int], convs_per_stage: list[int]) -> nn.ModuleList:
    stages, previous = nn.ModuleList(), 3
    for width, count in zip(channels, convs_per_stage):
        layers: list[nn.Module] = []
        for _ in range(count):
            layers += [nn.Conv2d(previous, width, 3, padding=1), nn.ReLU(inplace=False)]
            previous = width
        stages.append(nn.Sequential(*layers))
    return stages


class StagedNetwork(FeatureNetwork):
    """A VGG-shaped network: stages of 3x3 conv + ReLU, average-pooled between stages; one feature map
    (the last ReLU) per stage. Random (``seed``) for evaluation, trained for ``patch_cnn``."""

    def __init__(self, channels: list[int], convs_per_stage: list[int]):
        super().__init__()
        self.stages = _vgg_stages(list(channels), list(convs_per_stage))

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.normalize(images)
        out = []
        for index, stage in enumerate(self.stages):
            if index:
                x = F.avg_pool2d(x, 2)
            x = stage(x)
            out.append(x)
        return out


def random_staged_network(channels: list[int], convs_per_stage: list[int], seed: int) -> StagedNetwork:
    """A :class:`StagedNetwork` with He-normal random weights drawn from ``seed`` alone (global RNG untouched)."""
    network = StagedNetwork(channels, convs_per_stage)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2 / fan_in) ** 0.5)
                module.bias.zero_()
    return network.freeze()


# The VGG-19 of torchvision's layout (features.<index>), so the ImageNet weights file loads by name.
VGG19_LAYOUT = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]
VGG19_STYLE_LAYERS = (1, 6, 11, 20, 29)  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
VGG19_CONTENT_LAYER = 22  # relu4_2


class VGG19Features(FeatureNetwork):
    """VGG-19's convolutional part (torchvision's ``features`` indices); ReLU outputs of :data:`VGG19_STYLE_LAYERS`
    and the content layer, in index order. Load weights with :func:`load_vgg19_weights`. (``layout`` and ``taps``
    make smaller networks of the same naming, for tests.)"""

    def __init__(self, layout: list = VGG19_LAYOUT, taps: tuple[int, ...] = (*VGG19_STYLE_LAYERS, VGG19_CONTENT_LAYER)):
        super().__init__()
        layers: list[nn.Module] = []
        previous = 3
        for item in layout:
            if item == "M":
                layers.append(nn.AvgPool2d(2))  # average pooling: smoother gradients for style transfer (Gatys)
            else:
                layers += [nn.Conv2d(previous, item, 3, padding=1), nn.ReLU(inplace=False)]
                previous = item
        self.features = nn.Sequential(*layers)
        self.taps = sorted(set(taps))

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.normalize(images)
        out = []
        last = max(self.taps)
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                out.append(x)
            if index == last:
                break
        return out


def load_vgg19_weights(network: VGG19Features, path) -> VGG19Features:
    """Load torchvision's ``vgg19-*.pth`` (``features.*`` keys; the classifier is ignored) with ``weights_only``."""
    from cnnrnn.errors import UserError

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise UserError(f"{path} is not a readable VGG-19 weights file ({type(err).__name__}); fetch it again "
                        f"(`cnnrnn fetch stylize`)") from err
    wanted = {k: v for k, v in state.items() if k.startswith("features.")} if isinstance(state, dict) else {}
    missing = [k for k in network.state_dict() if k.startswith("features.") and k not in wanted]
    if missing:
        raise UserError(f"{path} has no VGG-19 weights {', '.join(missing[:3])}...; it is not torchvision's vgg19 file")
    network.load_state_dict(wanted, strict=False)
    return network.freeze()


class LossLevels:
    """Which outputs of a loss network are style levels and which one is the content level."""

    def __init__(self, network: FeatureNetwork, style_levels: list[int], content_level: int, gram: str = "plain"):
        self.network = network
        self.style_levels = list(style_levels)
        self.content_level = content_level
        self.gram = {"plain": plain_gram, "centred": centred_gram}[gram]

    def __call__(self, images: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        features = self.network(images)
        return [self.gram(features[i]) for i in self.style_levels], features[self.content_level]


def build_random_network(cfg: dict[str, Any]) -> FeatureNetwork:
    """The random networks of config (``kind: random_pyramid`` or ``random_staged``)."""
    if cfg["kind"] == "random_pyramid":
        return RandomPyramid(cfg["levels"], cfg["filters"], cfg["kernel"], cfg["seed"]).freeze()
    if cfg["kind"] == "random_staged":
        return random_staged_network(cfg["channels"], cfg["convs_per_stage"], cfg["seed"])
    raise ValueError(f"unknown random feature network {cfg['kind']!r}")


GREY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma: a colour image's luminance


class LuminanceOnly(FeatureNetwork):
    """``inner`` applied to the standardized luminance of the image (zero mean, unit spread, as grey RGB):
    colour and overall contrast are gone, the spatial structure (texture and shapes) stays. A grader built
    on it cannot be fooled by an output that only took the style's colours; colour is measured apart."""

    def __init__(self, inner: FeatureNetwork):
        super().__init__()
        self.inner = inner
        self.register_buffer("grey_weights", torch.tensor(GREY_WEIGHTS))

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        luminance = torch.einsum("bchw,c->bhw", images, self.grey_weights)[:, None]
        centred = luminance - luminance.mean(dim=(2, 3), keepdim=True)
        standard = centred / centred.pow(2).mean(dim=(2, 3), keepdim=True).sqrt().clamp_min(1e-6)
        # back to the pixel range the inner network normalizes: mean and spread of a typical photograph
        return self.inner((standard * 0.225 + 0.45).expand(-1, 3, -1, -1))


def evaluation_network(cfg: dict[str, Any]) -> FeatureNetwork:
    """The fixed network that grades every method (``stylize.evaluate.feature_network``)."""
    network = build_random_network(cfg)
    return LuminanceOnly(network).freeze() if cfg.get("luminance_only") else network
