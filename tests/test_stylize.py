"""stylize: Gram matrices, a grade colour cannot fool, VGG-19 weights over HTTP, training and the pipeline, small."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest
import torch

from cnnrnn.config import compose
from cnnrnn.errors import UserError
from cnnrnn.registry import APPLICATIONS
from cnnrnn.stylize.features import centred_gram, evaluation_network

ROOT = Path(__file__).resolve().parents[1]
TINY = list(APPLICATIONS["stylize"].tiny)


@pytest.fixture(scope="session")
def params() -> dict:
    composed = compose(TINY, ROOT)
    return {**composed["stylize"], "seed": composed["seed"]}


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, params) -> Path:
    from cnnrnn.fetching import fetch_sources
    from cnnrnn.stylize.data import prepare

    base = tmp_path_factory.mktemp("stylize")
    fetch_sources(params["data"]["source"], base / "raw")
    (base / "prepared").mkdir()
    prepare(params, base / "raw", base / "prepared")
    return base / "prepared"


def test_centred_gram_on_a_hand_checked_tensor():
    # two channels at two positions: [1, 3] and [0, 4]; centred: [-1, 1] and [-2, 2]
    features = torch.tensor([[1.0, 3.0], [0.0, 4.0]]).reshape(1, 2, 1, 2)
    assert torch.equal(centred_gram(features), torch.tensor([[[1.0, 2.0], [2.0, 4.0]]]))
    # adding a constant to a channel (a colour cast) leaves it unchanged
    assert torch.equal(centred_gram(features + torch.tensor([5.0, -1.0]).view(1, 2, 1, 1)), centred_gram(features))


def test_sliced_colour_loss_sees_colours_not_places():
    from cnnrnn.stylize.optimize import colour_projections, sliced_colour_loss

    generator = torch.Generator().manual_seed(0)
    style = torch.rand(3, 8, 8, generator=generator)
    shuffled = style.flatten(1)[:, torch.randperm(64, generator=generator)].reshape(3, 8, 8)
    target = colour_projections(style)
    assert float(sliced_colour_loss(shuffled[None], target)) < 1e-12  # the same colours elsewhere: no loss
    assert float(sliced_colour_loss(style.flip(0)[None], target)) > 1e-3  # red and blue swapped: a loss
    grey = style[:1].expand(3, -1, -1)
    tinted = (grey + torch.tensor([0.1, 0.0, -0.1]).view(3, 1, 1)).clamp(0, 1)
    assert float(sliced_colour_loss(tinted[None], colour_projections(grey))) > 1e-3  # a grey style stays grey


def test_style_network_noise_is_fresh_in_training_and_fixed_in_eval():
    from cnnrnn.stylize.network import build_style_network

    torch.manual_seed(0)
    network = build_style_network({"channels": [4, 4, 4], "residual_blocks": 1, "noise_channels": 2})
    torch.nn.init.normal_(network.up[-1][1].weight, std=0.1)  # not the identity any more
    image = torch.rand(1, 3, 18, 22)
    network.eval()
    with torch.no_grad():
        first, again = network(image), network(image)
        assert first.shape == image.shape and torch.equal(first, again)  # styling is deterministic
        network.train()
        assert not torch.equal(network(image), network(image))  # training sees new noise each time
    plain = build_style_network({"channels": [4, 4, 4], "residual_blocks": 1})  # older model files: no noise
    assert plain.noise_channels == 0 and plain.down[0][1].in_channels == 3


def test_grey_output_paints_grey_and_only_for_greyscale_styles():
    from cnnrnn.stylize.network import build_style_network, grey_output_styles, is_greyscale

    torch.manual_seed(0)
    network = build_style_network({"channels": [4, 4, 4], "residual_blocks": 1, "noise_channels": 2}, grey_output=True)
    out = network.eval()(torch.rand(1, 3, 12, 16))
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    grey = torch.full((3, 8, 8), 100, dtype=torch.uint8)
    colour = grey.clone()
    colour[0, 0, 0] = 110
    assert is_greyscale(grey) and not is_greyscale(colour)
    names, images = ["brick", "ihc"], [grey, colour]
    assert grey_output_styles({"grey_output_for_grey_styles": True}, names, images) == ["brick"]
    assert grey_output_styles({"grey_output_for_grey_styles": False}, names, images) == []
    assert grey_output_styles({}, names, images) == []  # older configs: off


def test_a_luminance_only_loss_network_is_blind_to_colour(params, prepared, tmp_path):
    from cnnrnn.stylize.features import LuminanceOnly
    from cnnrnn.stylize.loss_network import build_loss_network, weights_path
    from cnnrnn.stylize.measures import grey
    from cnnrnn.stylize.model import make_datamodule, make_module, save_model
    from cnnrnn.stylize.predict import LoadedStylizer

    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    as_grey = grey(image[0])[None, None].expand(1, 3, -1, -1)  # the same luminance, no colour
    weights = weights_path(params["loss"], prepared.parent)  # the default loss network: VGG-16
    levels, _ = build_loss_network({**params["loss"], "luminance_only": True}, weights_file=weights)
    (grams, features), (grey_grams, grey_features) = levels(image), levels(as_grey)
    assert torch.allclose(features, grey_features, atol=1e-3)
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-3) for a, b in zip(grams, grey_grams))
    plain, _ = build_loss_network(params["loss"], weights_file=weights)
    assert not torch.allclose(plain(image)[1], plain(as_grey)[1], atol=1e-5)
    # a fitted (patch_cnn) loss network is saved and rebuilt for --method optimize as stylize.loss says: luminance-only
    # where stylize.loss is, plain where only the feed-forward loss (stylize.train.loss) is
    for override, optimize_sees_luminance in (("stylize.loss.luminance_only=true", True),
                                              ("+stylize.train.loss.luminance_only=true", False)):
        composed = compose([*TINY, "stylize/loss=patch_cnn", "stylize.loss.steps=2", "stylize.loss.batch_size=2", override,
                            "stylize.model.grey_output_for_grey_styles=true", "stylize.train.styles=[brick,ihc]"], ROOT)
        tiny = {**composed["stylize"], "seed": composed["seed"]}
        dm = make_datamodule(tiny, prepared)
        module = make_module(tiny, dm)
        assert isinstance(module.loss_network, LuminanceOnly)  # the feed-forward loss sees the luminance in both
        path = save_model(module, tmp_path / override[:5], dm, tiny)
        loaded = LoadedStylizer(path)
        assert isinstance(loaded.loss_levels().network, LuminanceOnly) == optimize_sees_luminance
        fitted = module.loss_network if optimize_sees_luminance else module.loss_network.inner
        assert torch.equal(loaded.loss_levels().network(image)[0], fitted(image)[0])
        assert loaded.networks["brick"].grey_output and not loaded.networks["ihc"].grey_output  # brick is greyscale
    saved = torch.load(path, weights_only=False)
    del saved["model_cfg"]["grey_output_for_grey_styles"]  # a model file from before session 12
    torch.save(saved, path)
    assert not LoadedStylizer(path).networks["brick"].grey_output


def test_colour_jitter_keeps_a_crop_an_image():
    from cnnrnn.stylize.crops import colour_jitter

    crop = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(1))
    jittered = colour_jitter(crop, torch.Generator().manual_seed(2))
    assert jittered.shape == crop.shape and 0 <= float(jittered.min()) and float(jittered.max()) <= 1
    assert torch.equal(jittered, colour_jitter(crop, torch.Generator().manual_seed(2)))  # seeded
    assert not torch.equal(jittered, crop)


def test_the_feed_forward_loss_changes_only_what_train_loss_names(params):
    from cnnrnn.stylize.model import training_loss_cfg

    changed = {**params, "train": {**params["train"], "loss": {"gram": "centred", "colour_weight": 5.0, "style_weight": None}}}
    cfg = training_loss_cfg(changed)
    assert (cfg["gram"], cfg["colour_weight"]) == ("centred", 5.0)
    assert cfg["style_weight"] == params["loss"]["style_weight"] and cfg["network"] == params["loss"]["network"]  # null: as stylize.loss
    with pytest.raises(UserError, match="stylize.train.loss.network"):
        training_loss_cfg({**params, "train": {**params["train"], "loss": {"network": "vgg19"}}})


def test_the_grain_only_control_is_graded_like_any_output_and_can_fail(params, prepared):
    """The colour-only image of issue 10 was the ratio's own denominator (1.0 by construction). The controls now are
    graded like any output: no grain is the photograph itself (1.0), and grain moves the random network's grade (on
    luminance, issue 27) a long way toward the style (about 0.5): a random grader rewards fine-scale statistics, which
    is why it reports without a bar and the learned judge (tests/test_stylize_judge.py) is the headline grader."""
    from cnnrnn.stylize.measures import grain_only, style_loss_ratio

    cfg = compose([], ROOT)["stylize"]["evaluate"]  # the real grader and side
    network = evaluation_network(cfg["feature_network"])
    test, styles = torch.load(prepared / "test.pt"), torch.load(prepared / "styles.pt")
    style = styles["images"][styles["names"].index("ihc")].float() / 255
    content = test["images"][0].float() / 255
    ratios = [style_loss_ratio(network, grain_only(content, strength, 0), content, style, cfg["side"])
              for strength in (0.0, cfg["grain_strength"])]
    assert ratios[0] == pytest.approx(1.0)
    assert ratios[1] < 0.8, ratios  # the control can fail: this grader takes grain for much of the style
    assert torch.equal(grain_only(content, 0.1, 5), grain_only(content, 0.1, 5))  # a fixed control


def test_stylize_intervals_resample_pairs_and_pair_each_method_with_each_control():
    import pandas as pd

    from cnnrnn.stylize.evaluate import CONTROLS, intervals

    rows = []
    for i, (content, style) in enumerate([(c, s) for c in "abcd" for s in ("x", "y")]):
        rows.append({"method": "feedforward", "content": content, "style": style, "style_loss_ratio": 0.4 + 0.01 * i,
                     "deception_rate": 0.5 + 0.05 * (i % 2), "content_ssim": 0.6, "color_distance": 0.5})
        for control in CONTROLS:
            rows.append({"method": control, "content": content, "style": style, "style_loss_ratio": 0.9 + 0.02 * i,
                         "deception_rate": 0.0, "content_ssim": 0.9, "color_distance": 0.7})
    out = intervals(pd.DataFrame(rows), 200, 0)
    assert out["feedforward_style_loss_ratio_ci95_low"] <= 0.435 <= out["feedforward_style_loss_ratio_ci95_high"]
    for control in CONTROLS:
        assert out[f"feedforward_vs_{control}_style_loss_ratio_difference"] == pytest.approx(-0.535)
        assert out[f"feedforward_vs_{control}_style_loss_ratio_difference_ci95_high"] < 0
        assert out[f"feedforward_vs_{control}_deception_rate_difference"] == pytest.approx(0.525)
        assert out[f"feedforward_vs_{control}_deception_rate_difference_ci95_low"] > 0
    assert "grain_only_vs_unstyled_style_loss_ratio_difference" not in out  # controls are not compared with each other
    assert "feedforward_vgg16_style_loss_ratio_ci95_low" not in out  # a measure no row has is left out


def test_optimizing_the_image_takes_the_style_texture(params, prepared):
    """Gatys' method, small: the grader (another network than the loss network) sees the texture move toward the style."""
    from cnnrnn.stylize.loss_network import build_loss_network
    from cnnrnn.stylize.measures import style_loss_ratio
    from cnnrnn.stylize.optimize import optimize_image

    levels, _ = build_loss_network(compose(["stylize/loss=random_staged"], ROOT)["stylize"]["loss"])
    test, styles = torch.load(prepared / "test.pt"), torch.load(prepared / "styles.pt")
    content, style = test["images"][0].float() / 255, styles["images"][1].float() / 255
    cfg = {"working_side": 64, "style_side": 64, "steps": 40, "content_weight": 1.0, "style_weight": 100.0, "tv_weight": 0.0}
    out, record = optimize_image(levels, content, style, cfg)
    assert out.shape == content.shape and record["steps"] >= 40
    network = evaluation_network(params["evaluate"]["feature_network"])
    assert style_loss_ratio(network, out, content, style, 64) < 0.75  # 1.0: no closer than the photograph


def test_held_out_photographs_never_reach_training(params, prepared):
    """Whole photographs per split; every training crop is a piece of a training photograph; the patch_cnn
    loss network is fitted on training photographs and style images only."""
    from cnnrnn.stylize.datamodule import RandomCrops
    from cnnrnn.stylize.model import loss_network_images, make_datamodule

    info = json.loads((prepared / "info.json").read_text())
    names = {split: set(info["content"][split]) for split in ("train", "val", "test")}
    assert not (names["train"] & names["val"]) and not (names["train"] & names["test"]) and not (names["val"] & names["test"])
    assert len(names["test"]) >= 4 and len(names["val"]) >= 1

    dm = make_datamodule(params, prepared)
    dm.setup("fit")
    held_out = [img for split in ("val", "test") for img in torch.load(prepared / f"{split}.pt")["images"]]
    train = dm.splits["train"]["images"]
    torch.manual_seed(0)
    crops = RandomCrops(train, 12, 24, (1.0, 1.0))  # scale 1: crops are exact pixels, maybe mirrored
    for (crop,) in (crops[i] for i in range(len(crops))):
        pixels = (crop * 255).round().to(torch.uint8)
        def found_in(image):
            windows = image.unfold(1, 24, 1).unfold(2, 24, 1)  # (3, h', w', 24, 24)
            hit = lambda p: (windows == p[:, None, None]).all(-1).all(-1).all(0).any()  # noqa: E731
            return bool(hit(pixels) or hit(pixels.flip(-1)))
        assert any(found_in(img) for img in train)
        assert not any(found_in(img) for img in held_out if img.shape[-1] >= 24 and img.shape[-2] >= 24)
    fitted_on = loss_network_images(dm)
    for image in held_out:
        assert not any(f.shape == image.shape and torch.equal(f, image.float() / 255) for f in fitted_on)


@pytest.mark.parametrize("loss", [[], ["stylize/loss=patch_cnn", "stylize.loss.steps=4", "stylize.loss.batch_size=4"]],
                         ids=["default_loss_network", "patch_cnn"])
def test_fast_dev_run(loss, prepared):
    import pytorch_lightning as pl

    from cnnrnn.stylize.model import make_datamodule, make_module

    composed = compose([*TINY, *loss], ROOT)
    params = {**composed["stylize"], "seed": composed["seed"]}
    dm = make_datamodule(params, prepared)
    module = make_module(params, dm)
    pl.Trainer(fast_dev_run=True, logger=False, enable_progress_bar=False).fit(module, datamodule=dm)
    first = lambda m: next(iter(m.loss_network.state_dict().values()))  # noqa: E731
    assert torch.equal(first(module), first(make_module(params, dm)))  # seeded or read from a file: the same again


def test_vgg19_weights_come_through_the_fetch_machinery(file_server, tmp_path):
    """A tiny VGG state dict (torchvision's key names) served from 127.0.0.1: fetched with its checksum, loaded with
    weights_only; a checksum mismatch is a clear error and leaves no file behind."""
    import hashlib

    from cnnrnn.fetching import fetch_sources
    from cnnrnn.stylize.features import VGG19Features, load_vgg19_weights

    layout, taps = [4, "M", 8], (1, 4)
    reference = VGG19Features(layout, taps)
    state = {k: torch.randn_like(v) for k, v in reference.state_dict().items() if k.startswith("features.")}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # the classifier is ignored
    served, url = file_server
    buffer = io.BytesIO()
    torch.save(state, buffer)
    (served / "vgg19-tiny.pth").write_bytes(buffer.getvalue())
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()

    source = {"kind": "url", "base_url": url, "timeout_seconds": 10, "files": {"vgg19-tiny.pth": f"sha256:{digest}"}}
    fetch_sources({"weights": source}, tmp_path / "raw")
    network = load_vgg19_weights(VGG19Features(layout, taps), tmp_path / "raw" / "vgg19-tiny.pth")
    assert torch.equal(network.features[3].weight, state["features.3.weight"])
    assert len(network(torch.rand(1, 3, 16, 16))) == 2

    wrong = {**source, "files": {"vgg19-tiny.pth": "sha256:" + "0" * 64}}
    with pytest.raises(UserError, match="checksum mismatch"):
        fetch_sources({"weights": wrong}, tmp_path / "other")
    assert not [p for p in (tmp_path / "other").rglob("*") if p.is_file() and p.name != "source.json"]

    (tmp_path / "junk.pth").write_bytes(b"not a state dict")
    with pytest.raises(UserError, match="not a readable VGG-19 weights file"):
        load_vgg19_weights(VGG19Features(layout, taps), tmp_path / "junk.pth")


def test_tiny_dvc_repro_predict_and_the_mlflow_model(tiny_pipeline, tmp_path):
    """fetch -> prepare -> train -> evaluate through DVC (the session's one tiny `dvc repro`); metrics, grid;
    `cnnrnn predict` writes a styled image and says clearly what is wrong with a bad file; the MLflow model returns
    styled images."""
    project_copy, cli_env = tiny_pipeline.root, tiny_pipeline.env
    assert "stylize_evaluate" in tiny_pipeline.output

    def run(*cmd, ok=True):
        done = subprocess.run(list(cmd), cwd=project_copy, env=cli_env, capture_output=True, text=True)
        assert (done.returncode == 0) == ok, done.stderr[-3000:]
        return done
    metrics = json.loads((project_copy / "metrics/stylize.json").read_text())
    for key in ("feedforward_deception_rate", "feedforward_style_loss_ratio", "feedforward_content_ssim",
                "feedforward_color_distance", "feedforward_vgg16_style_loss_ratio", "optimize_deception_rate",
                "optimize_style_loss_ratio", "grain_only_deception_rate", "colour_matched_deception_rate",
                "unstyled_deception_rate", "seconds_per_image_512", "feedforward_deception_rate_ci95_low",
                "optimize_vs_colour_matched_deception_rate_difference_ci95_low",
                "optimize_vs_grain_only_style_loss_ratio_difference_ci95_high", "optimize_seconds_per_image_512",
                "feedforward_val_deception_rate", "feedforward_val_content_ssim", "judge_photograph_recall",
                "judge_starry_night_heldout_recall", "feedforward_astronaut_brick_deception_rate", "train_seconds",
                "train_seconds_per_style"):
        assert key in metrics, key
    assert (project_copy / "plots/stylize/grid.png").is_file()
    assert "style_loss_ratio" in (project_copy / "plots/stylize/per_image.csv").read_text()

    from PIL import Image

    big = tmp_path / "big.png"
    Image.new("L", (1500, 900), 128).save(big)  # any mode; larger than predict.max_side
    out = json.loads(run("cnnrnn", "predict", "stylize", str(big), "--style", "brick", "-o", str(tmp_path / "out.png")).stdout)
    assert out["style"] == "brick" and Image.open(tmp_path / "out.png").size == (1024, 614)
    optimized = run("cnnrnn", "predict", "stylize", str(big), "--method", "optimize", "--steps", "2",
                    "-o", str(tmp_path / "opt.png"))
    assert json.loads(optimized.stdout)["method"] == "optimize" and (tmp_path / "opt.png").is_file()
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    for bad, says in (("empty.png", "empty file"), ("text.png", "not an image"), ("missing.png", "no such file")):
        failed = run("cnnrnn", "predict", "stylize", str(tmp_path / bad), ok=False)
        assert says in failed.stderr and "Traceback" not in failed.stderr
    assert "style 'starry'" in run("cnnrnn", "predict", "stylize", str(big), "--style", "starry", ok=False).stderr
    no_network = run("cnnrnn", "predict", "stylize", str(big), "--style", "gravel", ok=False).stderr
    assert "--method optimize only" in no_network  # gravel has no network; Gatys' method takes it:
    run("cnnrnn", "predict", "stylize", str(big), "--style", "gravel", "--method", "optimize", "--steps", "2",
        "-o", str(tmp_path / "gravel.png"))

    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(cli_env["MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs(experiment_names=["stylize"])
    train = runs[runs["tags.cnnrnn.stage"] == "train"].iloc[0]
    model = mlflow.pyfunc.load_model(f"runs:/{train['run_id']}/model")
    answer = model.predict(pd.DataFrame({"image": [big.read_bytes()], "style": ["starry_night"]}))
    assert answer.loc[0, "style"] == "starry_night" and Image.open(io.BytesIO(answer.loc[0, "image"])).size == (1024, 614)


def test_online_data_coco_content_paintings_and_vgg19_from_a_local_server(tmp_path):
    """`stylize/data=coco_paintings` against 127.0.0.1: the COCO subset through detect's fetch code, a painting and
    the weights file by checksum; prepare splits the COCO photographs by seed into whole-image splits."""
    import hashlib

    from cnnrnn.fetching import fetch_sources
    from cnnrnn.stylize.data import complete_fetch, prepare
    import zipfile

    from test_coco import MEMBER, jpeg, serving, tiny_coco  # the same tiny COCO and server as detect's tests

    root = tmp_path / "served"
    (root / "val2017").mkdir(parents=True)
    with serving(root) as server:
        data = tiny_coco(server.url)
        with zipfile.ZipFile(root / "annotations_trainval2017.zip", "w") as zf:
            zf.writestr(MEMBER, json.dumps(data))
        for image in data["images"]:
            (root / "val2017" / image["file_name"]).write_bytes(jpeg(image["width"], image["height"], image["id"]))
        (root / "painting.jpg").write_bytes(jpeg(64, 48, 7))
        (root / "weights.pth").write_bytes(b"weights")
        sha = lambda name: "sha256:" + hashlib.sha256((root / name).read_bytes()).hexdigest()  # noqa: E731
        composed = compose(["stylize/data=coco_paintings", "stylize.data.content.val_count=1",
                            "stylize.data.content.test_count=1", "stylize.data.side=64"], ROOT)
        params = {**composed["stylize"], "seed": composed["seed"]}
        source = params["data"]["source"]
        source["annotations"] |= {"base_url": server.url, "timeout_seconds": 5,
                                  "files": {"annotations_trainval2017.zip": sha("annotations_trainval2017.zip")}}
        source["paintings"] |= {"base_url": server.url, "timeout_seconds": 5, "files": {"painting.jpg": sha("painting.jpg")}}
        source["vgg19"] |= {"base_url": server.url, "timeout_seconds": 5, "files": {"weights.pth": sha("weights.pth")}}
        params["data"]["styles"] = {"painting": "painting.jpg"}
        del source["vgg16"]  # the VGG-16 weights file's own test is in test_stylize_vgg16.py
        params["data"]["vgg16_weights"] = None
        params["data"]["subset"] |= {"workers": 2, "categories": ["person", "dog", "cat"]}
        raw = tmp_path / "raw"
        fetch_sources(source, raw)
        complete_fetch(params, raw)
    (tmp_path / "prepared").mkdir()
    info = prepare(params, raw, tmp_path / "prepared")
    assert info["sizes"] == {"train": 2, "val": 1, "test": 1}  # 4 images show person/dog/cat with a usable box
    names = [n for split in ("train", "val", "test") for n in info["content"][split]]
    assert len(set(names)) == 4
    assert torch.load(tmp_path / "prepared" / "styles.pt")["names"] == ["painting"]


def test_any_mode_is_read_and_a_too_small_image_is_a_clear_error():
    import numpy as np
    from PIL import Image

    from cnnrnn.stylize.predict import image_from_bytes, image_from_pillow

    grey16 = Image.fromarray(np.array([[0, 1000], [2000, 4000]] * 16, dtype=np.uint16).repeat(16, 1))
    image = image_from_pillow(grey16, 1024)
    assert image.shape == (3, 32, 32) and float(image.max()) == 1.0 and float(image.min()) == 0.0  # scaled, not white
    clear = Image.new("RGBA", (20, 20), (255, 0, 0, 0))  # fully transparent red: white
    assert torch.allclose(image_from_pillow(clear, 1024), torch.ones(3, 20, 20))
    with pytest.raises(UserError, match="too small to style"):
        image_from_pillow(Image.new("RGB", (2000, 20)), 1024)  # 1024 x 10 after resizing
    with pytest.raises(UserError, match="not an image"):
        image_from_bytes(b"not an image", 1024)
