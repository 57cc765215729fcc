"""stylize's graders on fixed images: the learned judge tells a style's texture from a photograph whatever the colours,
and the controls (the photograph, the photograph in the style's colours, with grain) score far from the style."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnnrnn.config import compose

ROOT = Path(__file__).resolve().parents[1]


def stripes(side: int, period: int, colour: tuple[float, float, float], angle: float) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(side, dtype=torch.float32), torch.arange(side, dtype=torch.float32), indexing="ij")
    wave = 0.5 + 0.5 * torch.sin(2 * torch.pi * (x * torch.cos(torch.tensor(angle)) + y * torch.sin(torch.tensor(angle))) / period)
    return (wave[None] * torch.tensor(colour).view(3, 1, 1)).clamp(0, 1)


def smooth_photo(side: int, seed: int) -> torch.Tensor:
    """A "photograph" without texture: a few large soft blobs of colour."""
    coarse = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(coarse[None], size=(side, side), mode="bicubic", align_corners=False)[0].clamp(0, 1)


@pytest.fixture(scope="module")
def judge_and_images():
    from cnnrnn.stylize.judge import fit_judge

    cfg = {**compose([], ROOT)["stylize"]["evaluate"]["judge"], "steps": 150, "side": 128, "crop_side": 32}
    styles = {"fine": stripes(160, 6, (0.9, 0.2, 0.2), 0.3), "coarse": stripes(160, 24, (0.2, 0.3, 0.9), 1.2)}
    photos = [smooth_photo(160, seed) for seed in range(6)]
    judge, record = fit_judge(cfg, styles, photos, seed=0)
    return judge, cfg, styles, record


def test_the_judge_knows_each_style_by_its_texture_and_a_photograph_as_one(judge_and_images):
    from cnnrnn.stylize.judge import deception_rate, fit_judge, judge_accuracy

    judge, cfg, styles, record = judge_and_images
    assert record["judge_seconds"] > 0
    accuracy = judge_accuracy(judge, styles, [smooth_photo(160, 99)], cfg)  # a photograph it never saw
    assert accuracy["judge_fine_heldout_recall"] >= 0.8 and accuracy["judge_coarse_heldout_recall"] >= 0.8, accuracy
    assert accuracy["judge_photograph_recall"] >= 0.8, accuracy
    # colour is not what it goes by: the fine stripes in green, or grey, are still the fine style
    for colour in ((0.1, 0.8, 0.2), (0.7, 0.7, 0.7)):
        assert deception_rate(judge, stripes(160, 6, colour, 0.3), "fine", cfg) >= 0.7
    again, _ = fit_judge(cfg, styles, [smooth_photo(160, seed) for seed in range(6)], seed=0)
    assert all(torch.equal(a, b) for a, b in zip(judge.state_dict().values(), again.state_dict().values()))  # seeded


def test_the_controls_score_far_from_the_style(judge_and_images):
    """The three controls of every pair: the photograph, the photograph with the style's colour histogram, the
    photograph with grain. None took the style's texture, so the judge must not take them for it, while the style's
    own texture on the photograph's shapes (a stand-in for a styled output) is."""
    from cnnrnn.stylize.evaluate import controls
    from cnnrnn.stylize.judge import deception_rate

    judge, cfg, styles, _ = judge_and_images
    photo = smooth_photo(160, 42)
    evaluate_cfg = compose([], ROOT)["stylize"]["evaluate"]
    for name, style in styles.items():
        wave = style.amax(dim=0) / style.amax()
        styled = photo * (0.2 + 0.8 * wave)  # the style's texture in the photograph's colours
        styled_rate = deception_rate(judge, styled, name, cfg)
        for control, image in controls(photo, style, evaluate_cfg).items():
            rate = deception_rate(judge, image, name, cfg)
            assert rate <= 0.3 and styled_rate - rate >= 0.5, (name, control, rate, styled_rate)


def test_tiles_cover_the_image_and_stay_inside():
    from cnnrnn.stylize.judge import tiles

    image = torch.arange(3 * 70 * 100, dtype=torch.float32).reshape(3, 70, 100)
    crops = tiles(image, 32, 16)
    assert crops.shape[1:] == (3, 32, 32)
    assert torch.equal(crops[0], image[:, :32, :32]) and torch.equal(crops[-1], image[:, -32:, -32:])  # flush with the edges
    assert len(crops) == len({0, 16, 32, 38}) * len({0, 16, 32, 48, 64, 68})
