"""How a styled image is graded: style taken, content kept, colours (torch and numpy only).

- :func:`style_loss_ratio`: the style distance of the output to the style image divided by that of the
  unstyled content image, in the features of the fixed *evaluation* network (not a loss network),
  after each image's colour histogram is matched to the style's. 0 is the style's texture statistics
  exactly; 1 is no closer than the photo was (as is a photo that only took the style's colours).
- :func:`content_ssim`: SSIM (7x7 window) between the Sobel edge magnitudes of the greyscale output and
  the greyscale content: are the content's shapes still where they were?
- :func:`color_distance`: the Hellinger distance between joint RGB histograms (8 bins a channel):
  0 same colours, 1 no colour in common. Reported apart from style: colour alone is not style.
- :func:`grain_only`: the control every output is compared with: the photograph with film grain added and
  nothing else. Unlike a colour-only image (the ratio's own denominator, 1.0 by construction) it can fail: a
  grader that rewards fine-scale statistics scores grain as style.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cnnrnn.stylize.features import GREY_WEIGHTS, FeatureNetwork, style_distance



def resize_long_side(image: torch.Tensor, side: int) -> torch.Tensor:
    """(C, H, W) or (B, C, H, W) floats -> the same with its longer side ``side`` (area-averaged when shrinking)."""
    batch = image if image.dim() == 4 else image[None]
    h, w = batch.shape[-2:]
    scale = side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    if size != (h, w):
        mode = "area" if scale < 1 else "bilinear"
        batch = F.interpolate(batch, size=size, mode=mode, **({} if mode == "area" else {"align_corners": False}))
    return batch if image.dim() == 4 else batch[0]


@torch.no_grad()
def style_loss_ratio(network: FeatureNetwork, output: torch.Tensor, content: torch.Tensor, style: torch.Tensor,
                     side: int, match_colours: bool = True) -> float:
    """Style distance(output, style) / style distance(content, style) in ``network``'s centred Gram matrices;
    images (3, H, W) in [0, 1], each measured with its longer side ``side``.

    With ``match_colours`` each channel of the output and of the content is first given the style's histogram
    (:func:`match_histograms`), so the ratio measures texture, not colour: an output that only took the
    style's colours scores 1.0 (no closer than the photo), whatever its colours. Colour is graded apart
    (:func:`color_distance`).
    """
    style = resize_long_side(style, side)
    target = network.grams(style[None])

    def distance(image: torch.Tensor) -> torch.Tensor:
        image = resize_long_side(image.clamp(0, 1), side)
        if match_colours:
            image = match_histograms(image, style)
        return style_distance(network.grams(image[None]), target)

    return float(distance(output) / distance(content).clamp_min(1e-12))


def grain_only(content: torch.Tensor, strength: float, seed: int) -> torch.Tensor:
    """(3, H, W) in [0, 1] -> the same photograph with grey Gaussian grain of standard deviation ``strength`` per
    pixel (the same in the three channels, as film grain), clipped to [0, 1]; ``seed`` fixes the grain."""
    noise = torch.randn(content.shape[-2:], generator=torch.Generator().manual_seed(seed), dtype=content.dtype)
    return (content + strength * noise[None]).clamp(0, 1)


def grey(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) -> (H, W), or a batch (B, 3, H, W) -> (B, H, W): the luminance."""
    return torch.einsum("...chw,c->...hw", image, torch.tensor(GREY_WEIGHTS, dtype=image.dtype, device=image.device))


def sobel_magnitude(image: torch.Tensor) -> torch.Tensor:
    """(H, W) -> (H, W) gradient magnitude of the 3x3 Sobel filters (edges replicated)."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=image.dtype)
    kernels = torch.stack([kx, kx.T])[:, None]
    padded = F.pad(image[None, None], (1, 1, 1, 1), mode="replicate")
    gx, gy = F.conv2d(padded, kernels)[0]
    return torch.sqrt(gx * gx + gy * gy)


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 7, data_range: float | None = None) -> float:
    """Mean SSIM of two (H, W) maps with a ``window`` x ``window`` uniform window (as scikit-image's
    ``structural_similarity`` with its defaults: K1 0.01, K2 0.03, sample covariance, borders cropped)."""
    a, b = a.double()[None, None], b.double()[None, None]
    if data_range is None:
        data_range = float(torch.maximum(a.max(), b.max()) - torch.minimum(a.min(), b.min())) or 1.0
    n = window * window
    mean = lambda x: F.avg_pool2d(x, window, stride=1)  # noqa: E731 - valid positions only (borders cropped)
    ma, mb = mean(a), mean(b)
    cov = n / (n - 1)
    va, vb, vab = cov * (mean(a * a) - ma * ma), cov * (mean(b * b) - mb * mb), cov * (mean(a * b) - ma * mb)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ma * mb + c1) * (2 * vab + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    return float(s.mean())


def content_ssim(output: torch.Tensor, content: torch.Tensor) -> float:
    """SSIM (7x7) of the Sobel edge magnitudes of the greyscale output and content, same size, (3, H, W) in [0, 1]."""
    if output.shape[-2:] != content.shape[-2:]:
        output = F.interpolate(output[None], size=content.shape[-2:], mode="bilinear", align_corners=False)[0]
    edges_out, edges_content = sobel_magnitude(grey(output.clamp(0, 1))), sobel_magnitude(grey(content))
    return ssim(edges_out, edges_content, data_range=float(edges_content.max() - edges_content.min()) or 1.0)


def color_histogram(image: torch.Tensor, bins: int = 8) -> np.ndarray:
    """(3, H, W) in [0, 1] -> the joint RGB histogram (bins^3,), summing to 1."""
    q = (image.clamp(0, 1) * (bins - 1e-6)).long().reshape(3, -1).numpy()
    index = (q[0] * bins + q[1]) * bins + q[2]
    counts = np.bincount(index, minlength=bins ** 3).astype(np.float64)
    return counts / counts.sum()


def color_distance(a: torch.Tensor, b: torch.Tensor, bins: int = 8) -> float:
    """Hellinger distance between the joint colour histograms of two (3, H, W) images: in [0, 1]."""
    p, q = color_histogram(a, bins), color_histogram(b, bins)
    return float(np.sqrt(max(0.0, 1.0 - np.sqrt(p * q).sum())))


def match_histograms(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Each channel of ``image`` remapped so its histogram is ``reference``'s (its quantiles); (3, H, W) in [0, 1].

    The colours of the style and nothing else: the check that a metric is not fooled by colour.
    """
    out = torch.empty_like(image)
    for c in range(3):
        source = image[c].flatten().numpy()
        order = np.argsort(source, kind="stable")
        quantiles = np.linspace(0, 1, source.size)
        ref = np.sort(reference[c % reference.shape[0]].flatten().numpy())
        mapped = np.interp(quantiles, np.linspace(0, 1, ref.size), ref)
        values = np.empty_like(source)
        values[order] = mapped
        out[c] = torch.from_numpy(values.reshape(image.shape[1:]))
    return out
