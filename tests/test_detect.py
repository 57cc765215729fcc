"""detect at a small size: real digits on real textures in COCO format, the real model and COCOeval."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnrnn.config import compose

ROOT = Path(__file__).resolve().parents[1]
TINY = ["detect.data.images.train=24", "detect.data.images.val=8", "detect.data.images.test=8"]


@pytest.fixture(scope="session")
def params() -> dict:
    composed = compose(TINY, ROOT)
    return {**composed["detect"], "seed": composed["seed"]}


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, params) -> Path:
    from cnnrnn.detect.data import prepare
    from cnnrnn.fetching import fetch_sources

    base = tmp_path_factory.mktemp("detect")
    fetch_sources(params["data"]["source"], base / "raw")
    (base / "prepared").mkdir()
    prepare(params, base / "raw", base / "prepared")
    return base / "prepared"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, params, prepared) -> Path:
    import pytorch_lightning as pl

    from cnnrnn.detect.model import make_datamodule, make_module, save_model

    dm = make_datamodule(params, prepared)
    dm.setup("fit")
    module = make_module(params, dm)
    pl.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=False, enable_checkpointing=False,
               enable_progress_bar=False, enable_model_summary=False).fit(module, datamodule=dm)
    out = tmp_path_factory.mktemp("detect-model")
    save_model(module, out, dm, params)
    return out


def test_prepared_set_is_coco_with_several_objects_per_image(prepared):
    from pycocotools.coco import COCO

    coco = COCO(str(prepared / "instances_train.json"))
    per_image = [len(coco.getAnnIds(imgIds=[i])) for i in coco.getImgIds()]
    assert len(per_image) == 24 and min(per_image) >= 2 and max(per_image) <= 6
    tensors = torch.load(prepared / "train.pt")
    assert tensors["images"].shape == (24, 1, 128, 128)
    assert int((tensors["labels"] >= 0).sum()) == sum(per_image)
    info = json.loads((prepared / "info.json").read_text())
    assert info["classes"] == [str(d) for d in range(10)]


def test_fast_dev_run(params, prepared):
    import pytorch_lightning as pl

    from cnnrnn.detect.model import make_datamodule, make_module

    dm = make_datamodule(params, prepared)
    dm.setup("fit")
    pl.Trainer(fast_dev_run=True, logger=False, enable_progress_bar=False).fit(make_module(params, dm), datamodule=dm)


def test_cocoeval_runs_on_the_prepared_test_split(params, prepared, model_dir, tmp_path):
    from cnnrnn.detect.evaluate import evaluate
    from cnnrnn.stages import AppPaths

    root = tmp_path / "root"
    paths = AppPaths(root, "detect")
    paths.plots.mkdir(parents=True)
    paths.prepared.parent.mkdir(parents=True)
    paths.prepared.symlink_to(prepared)
    paths.model_dir.parent.mkdir(parents=True)
    paths.model_dir.symlink_to(model_dir)
    metrics, files = evaluate(params, paths)
    assert 0 <= metrics["map"] <= metrics["map_50"] <= 1 and metrics["n_test_images"] == 8
    results = json.loads((root / "data/detect/evaluation/detections_test.json").read_text())
    assert all(set(r) == {"image_id", "category_id", "bbox", "score"} for r in results)
    assert all(f.exists() for f in files)


def test_predict_prints_boxes_and_draws_them(model_dir, prepared, tmp_path):
    from PIL import Image

    Image.open(prepared / "test" / "000001.png").resize((300, 300)).save(tmp_path / "scene.jpg")
    done = subprocess.run([sys.executable, "-m", "cnnrnn.cli", "predict", "detect", "--model-dir", str(model_dir),
                           str(tmp_path / "scene.jpg"), "-o", str(tmp_path / "boxes.png")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["input"].endswith("scene.jpg") and isinstance(result["boxes"], list)
    assert Image.open(tmp_path / "boxes.png").size == (300, 300)


@pytest.mark.parametrize("content", [b"", b"not an image"])
def test_predict_bad_input_is_one_clear_line(model_dir, tmp_path, content):
    bad = tmp_path / "bad.png"
    bad.write_bytes(content)
    done = subprocess.run([sys.executable, "-m", "cnnrnn.cli", "predict", "detect", "--model-dir", str(model_dir),
                           str(bad)], capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
