"""The feed-forward style network (Johnson et al. 2016, slimmed to run a 512x512 image in about a second
on 2 CPU cores) as a plain ``nn.Module``.

Reflection-padded convolutions, instance normalization, residual blocks at a quarter of the side,
and nearest-neighbour upsampling followed by a convolution (no transposed convolutions: no
checkerboard). The network adds its output to the input image's logits (so the result stays in (0, 1)),
and its last layer starts at zero: an untrained network returns the photograph, and a few minutes of training on 2 cores move it toward the
style from there (as Gatys' optimization starts from the photograph). Input and output: images
(B, 3, H, W) in [0, 1]; any H and W (multiples of 4 are exact, others are padded and cropped).

``noise_channels`` > 0 gives the network uniform noise images beside the photograph (Ulyanov et al.'s
texture networks): where the photograph is flat (sky, a blurred background) the noise is what the network
turns into the style's texture. Training draws fresh noise from the seeded global generator; a network in
eval mode uses the same noise (seed 0) every time, so styling an image is deterministic.

``grey_output`` makes the network's output grey (its luminance in all three channels): the network of a greyscale
style (``stylize.model.grey_output_for_grey_styles``). Without it, a greyscale style's network turned photographs
blue: the random loss network's style distance was lower for the blue output than for its own greyscale version,
so the style loss paid for a colour the style does not have (README, stylize).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnrnn.stylize.measures import grey


class ConvLayer(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, norm: bool = True, relu: bool = True):
        layers: list[nn.Module] = [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride)]
        if norm:
            layers.append(nn.InstanceNorm2d(cout, affine=True))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(ConvLayer(channels, channels, 3), ConvLayer(channels, channels, 3, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpsampleConv(nn.Sequential):
    """Nearest-neighbour x2, then a 3x3 convolution: the upsampling that leaves no checkerboard."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), ConvLayer(cin, cout, 3))


class StyleNetwork(nn.Module):
    """``channels`` [c1, c2, c3]: the 9x9 input layer's width, then the two stride-2 stages';
    ``residual_blocks`` at width c3 (a quarter of the side)."""

    def __init__(self, channels: list[int], residual_blocks: int, noise_channels: int = 0, grey_output: bool = False):
        super().__init__()
        c1, c2, c3 = channels
        self.noise_channels = noise_channels
        self.grey_output = grey_output
        self.down = nn.Sequential(ConvLayer(3 + noise_channels, c1, 9), ConvLayer(c1, c2, 3, stride=2), ConvLayer(c2, c3, 3, stride=2))
        self.residual = nn.Sequential(*[ResidualBlock(c3) for _ in range(residual_blocks)])
        self.up = nn.Sequential(UpsampleConv(c3, c2), UpsampleConv(c2, c1), ConvLayer(c1, 3, 9, norm=False, relu=False))
        last = self.up[-1][1]
        nn.init.zeros_(last.weight)  # the network starts as the identity (output = input): training moves
        nn.init.zeros_(last.bias)    # from the photograph toward the style, as Gatys' optimization does

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        x = F.pad(images, (0, pw, 0, ph), mode="reflect") if ph or pw else images
        inputs = x - 0.5
        if self.noise_channels:
            inputs = torch.cat([inputs, self.noise(x)], dim=1)
        change = self.up(self.residual(self.down(inputs)))
        out = torch.sigmoid(torch.logit(x.clamp(1 / 512, 1 - 1 / 512)) + change)  # stays in (0, 1)
        if self.grey_output:
            out = grey(out)[:, None].expand_as(out)
        return out[..., :h, :w]

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        """(B, noise_channels, H, W) uniform in [-0.5, 0.5): fresh in training, the same (seed 0) in eval mode."""
        shape = (x.shape[0], self.noise_channels, *x.shape[-2:])
        generator = None if self.training else torch.Generator().manual_seed(0)
        return torch.rand(shape, generator=generator).to(x) - 0.5


def build_style_network(model_cfg: dict, grey_output: bool = False) -> StyleNetwork:
    """``model_cfg``: ``channels``, ``residual_blocks``, ``noise_channels`` (0 where absent: older model files)."""
    return StyleNetwork(list(model_cfg["channels"]), model_cfg["residual_blocks"], model_cfg.get("noise_channels", 0),
                        grey_output)


def is_greyscale(image: torch.Tensor) -> bool:
    """Whether a (3, H, W) image (uint8, or floats in [0, 1]) has no colour: its channels differ by at most 2/255."""
    image = image.float().div(255) if image.dtype == torch.uint8 else image.float()
    return bool((image.amax(dim=0) - image.amin(dim=0)).max() <= 2 / 255 + 1e-6)


def grey_output_styles(model_cfg: dict, names: list[str], images: list[torch.Tensor]) -> list[str]:
    """The styles whose networks paint grey: the greyscale ones, where ``grey_output_for_grey_styles`` is set."""
    if not model_cfg.get("grey_output_for_grey_styles", False):
        return []
    return [name for name, image in zip(names, images) if is_greyscale(image)]
