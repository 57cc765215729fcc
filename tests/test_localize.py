"""localize and the composed digit scenes, at a small size with the real digits and textures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnrnn.config import compose
from cnnrnn.digit_scenes import compose_scene
from conftest import linked_root, trained_briefly

ROOT = Path(__file__).resolve().parents[1]
TINY = ["localize.data.images.train=64", "localize.data.images.val=16", "localize.data.images.test=16"]


@pytest.fixture(scope="session")
def params() -> dict:
    composed = compose(TINY, ROOT)
    return {**composed["localize"], "seed": composed["seed"]}


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, params) -> Path:
    from cnnrnn.fetching import fetch_sources
    from cnnrnn.localize.data import prepare

    base = tmp_path_factory.mktemp("localize")
    fetch_sources(params["data"]["source"], base / "raw")
    (base / "prepared").mkdir()
    prepare(params, base / "raw", base / "prepared")
    return base / "prepared"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, params, prepared) -> Path:
    """A localizer trained for two batches and saved as the train stage saves it."""
    return trained_briefly("localize", params, prepared, tmp_path_factory.mktemp("localize-model"), 2, 0)


def test_composed_boxes_are_exactly_around_the_digit_pixels(params):
    """On a flat background every pixel a digit changed is visible: the box must be their tight box."""
    rng = np.random.default_rng(0)
    digits = np.zeros((3, 28, 28), dtype=np.uint8)
    digits[0, 5:20, 8:14] = 255
    digits[1, 3:25, 10:12] = 200
    digits[2, 10:12, 4:24] = 255
    flat = [np.full((300, 300), 90, dtype=np.uint8)]
    cfg = {**params["data"]["scenes"], "image_size": 96, "objects": [3, 3], "background_contrast": [1, 1]}
    for _ in range(20):
        scene = compose_scene(rng, digits, np.array([0, 1, 2]), flat, cfg)
        changed = scene.image != 90
        covered = np.zeros_like(changed)
        for x, y, w, h in scene.boxes:
            box_pixels = changed[y:y + h, x:x + w]
            assert box_pixels[0].any() and box_pixels[-1].any() and box_pixels[:, 0].any() and box_pixels[:, -1].any()
            covered[y:y + h, x:x + w] = True
        assert not (changed & ~covered).any(), "a changed pixel lies outside every box"


def test_prepared_coco_loads_in_pycocotools_and_splits_use_disjoint_digits(prepared):
    from pycocotools.coco import COCO

    for split in ("train", "val", "test"):
        coco = COCO(str(prepared / f"instances_{split}.json"))
        assert len(coco.getImgIds()) == len(coco.getAnnIds())  # one object per image
        tensors = torch.load(prepared / f"{split}.pt")
        assert tensors["images"].shape[1:] == (1, 64, 64) and tensors["boxes"].shape[1] == 4
    info = json.loads((prepared / "info.json").read_text())
    assert info["sizes"] == {"train": 64, "val": 16, "test": 16}


def test_fast_dev_run(params, prepared):
    import pytorch_lightning as pl

    from cnnrnn.localize.model import make_datamodule, make_module

    dm = make_datamodule(params, prepared)
    dm.setup("fit")
    pl.Trainer(fast_dev_run=True, logger=False, enable_progress_bar=False).fit(make_module(params, dm), datamodule=dm)


def test_predict_prints_class_and_box_in_file_pixels(params, prepared, tmp_path):
    import pytorch_lightning as pl
    from PIL import Image

    from cnnrnn.localize.model import make_datamodule, make_module, save_model

    dm = make_datamodule(params, prepared)
    dm.setup("fit")
    module = make_module(params, dm)
    pl.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
               enable_progress_bar=False, enable_model_summary=False).fit(module, datamodule=dm)
    save_model(module, tmp_path, dm, params)
    image = Image.open(prepared / "test" / "000001.png").resize((200, 100))
    image.save(tmp_path / "wide.jpg")
    done = subprocess.run([sys.executable, "-m", "cnnrnn.cli", "predict", "localize", "--model-dir", str(tmp_path),
                           str(tmp_path / "wide.jpg"), str(tmp_path / "missing.png")], capture_output=True, text=True)
    assert done.returncode == 1 and "missing.png" in done.stderr and "Traceback" not in done.stderr
    result = json.loads(done.stdout)
    x, y, w, h = result["box"]
    assert result["class"] in [str(d) for d in range(10)] and 0 <= x <= 200 and 0 <= y <= 100 and w > 0 and h > 0


def _tar_gz(path: Path, members: dict[str, bytes]) -> str:
    import hashlib
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_oxford_pet_archives_from_http_become_coco_splits(file_server, project_copy):
    """The real Oxford-IIIT Pet layout (images/*.jpg, annotations/xmls/*.xml) served from 127.0.0.1."""
    import io

    from PIL import Image

    from cnnrnn import stages
    from cnnrnn.config import write_params

    served, url = file_server
    images, xmls = {}, {}
    for i, (breed, species) in enumerate([("Abyssinian", "cat"), ("beagle", "dog")] * 10):
        name = f"{breed}_{i}"
        buffer = io.BytesIO()
        Image.new("RGB", (80, 60), (i * 10, 100, 50)).save(buffer, "JPEG")
        images[f"images/{name}.jpg"] = buffer.getvalue()
        xmls[f"annotations/xmls/{name}.xml"] = (
            f"<annotation><filename>{name}.jpg</filename><size><width>80</width><height>60</height><depth>3</depth>"
            f"</size><object><name>{species}</name><bndbox><xmin>11</xmin><ymin>6</ymin><xmax>40</xmax><ymax>35</ymax>"
            f"</bndbox></object></annotation>").encode()
    params = compose(["localize/data=oxford_pet", f"localize.data.source.base_url={url}"], project_copy)
    params["localize"]["data"]["source"]["files"] = {
        "images.tar.gz": _tar_gz(served / "images.tar.gz", images),
        "annotations.tar.gz": _tar_gz(served / "annotations.tar.gz", xmls)}
    write_params(params, project_copy)
    stages.fetch("localize", project_copy)
    info = stages.prepare("localize", project_copy)
    assert info["classes"] == ["cat", "dog"] and sum(info["sizes"].values()) == 20
    test = torch.load(project_copy / "data/localize/prepared/test.pt")
    assert test["images"].shape[1:] == (3, 128, 128)
    assert torch.allclose(test["boxes"][0], torch.tensor([10 * 128 / 80, 5 * 128 / 60, 30 * 128 / 80, 30 * 128 / 60]))


def test_validate_measures_a_split_as_evaluate_does_and_writes_nothing(params, prepared, model_dir, tmp_path):
    from cnnrnn.localize.evaluate import evaluate, validate

    paths = linked_root(tmp_path / "same", "localize", prepared, model_dir, val_is_test=True)
    twin = validate(params, paths)
    assert set(twin) == {"val_accuracy", "val_mean_iou"} and not list(paths.plots.iterdir())
    metrics, files = evaluate(params, paths)
    # the same images, the same code, the same numbers
    assert (twin["val_accuracy"], twin["val_mean_iou"]) == (metrics["test_accuracy"], metrics["mean_iou"])
    assert {"iou50_accuracy", "iou75_accuracy", "n_test"} <= set(metrics) and all(f.exists() for f in files)
    real = validate(params, linked_root(tmp_path / "real", "localize", prepared, model_dir))
    assert 0 <= real["val_accuracy"] <= 1 and 0 <= real["val_mean_iou"] <= 1


def test_intervals_are_seeded_and_bracket_the_test_figures(params, prepared, model_dir, tmp_path):
    from cnnrnn.localize.evaluate import evaluate

    paths = linked_root(tmp_path, "localize", prepared, model_dir)
    first, again = evaluate(params, paths)[0], evaluate(params, paths)[0]
    assert first == again
    for name in ("test_accuracy", "mean_iou"):
        assert first[f"{name}_ci95_low"] <= first[name] <= first[f"{name}_ci95_high"]
    # 16 test images: the IoU interval has a visible width
    assert first["mean_iou_ci95_high"] - first["mean_iou_ci95_low"] > 0.001
