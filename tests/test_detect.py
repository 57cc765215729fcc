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
    from cnnrnn.paths import AppPaths

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


def test_coco_subset_through_the_stages_from_http(file_server, project_copy):
    """detect/data=coco_subset: annotations zip and only the chosen images, served from 127.0.0.1."""
    import hashlib
    import io
    import zipfile

    from PIL import Image

    from cnnrnn import stages
    from cnnrnn.config import write_params

    served, url = file_server
    (served / "val2017").mkdir()
    images, annotations = [], []
    for i in range(1, 13):
        name = f"{i:012d}.jpg"
        Image.new("RGB", (64, 48), (i * 20, 90, 30)).save(served / "val2017" / name)
        images.append({"id": i, "file_name": name, "width": 64, "height": 48, "coco_url": url + "val2017/" + name})
        annotations.append({"id": i, "image_id": i, "category_id": 1 + i % 3, "bbox": [4, 4, 20, 16],
                            "area": 320, "iscrowd": 0})
    categories = [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}, {"id": 3, "name": "cat"}]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("annotations/instances_val2017.json",
                    json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    (served / "annotations_trainval2017.zip").write_bytes(buffer.getvalue())
    params = compose(["detect/data=coco_subset", f"detect.data.source.base_url={url}",
                      "detect.data.subset.categories=[dog,cat]", "detect.data.subset.max_images=6",
                      "detect.data.input_size=64"], project_copy)
    params["detect"]["data"]["source"]["files"] = {
        "annotations_trainval2017.zip": "sha256:" + hashlib.sha256(buffer.getvalue()).hexdigest()}
    write_params(params, project_copy)
    stages.fetch("detect", project_copy)
    info = stages.prepare("detect", project_copy)
    assert info["classes"] == ["dog", "cat"]
    assert sum(s["images"] for s in info["sizes"].values()) == 6
    assert len(list((project_copy / "data/detect/raw/subset/images").iterdir())) == 6  # only the chosen ones


@pytest.mark.parametrize("app", ["detect", "localize"])
def test_local_coco_directory_is_a_source(app, tmp_path, project_copy):
    """`<app>/data=coco_directory`: instances_*.json (checksummed) and image folders from a local directory."""
    import hashlib

    from PIL import Image

    from cnnrnn import stages
    from cnnrnn.coco.schema import write_coco
    from cnnrnn.config import write_params

    mine = tmp_path / "my_coco"
    files = {}
    for split in ("train", "val", "test"):
        (mine / split).mkdir(parents=True)
        images, annotations = [], []
        for i in range(1, 4):
            Image.new("RGB", (40, 30), (i * 50, 0, 0)).save(mine / split / f"{i}.jpg")
            images.append({"id": i, "file_name": f"{i}.jpg", "width": 40, "height": 30})
            annotations.append({"id": i, "image_id": i, "category_id": 1 + i % 2, "bbox": [2, 3, 10 + i, 8]})
        write_coco(mine / f"instances_{split}.json", images, annotations, [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}])
        files[f"instances_{split}.json"] = "sha256:" + hashlib.sha256((mine / f"instances_{split}.json").read_bytes()).hexdigest()
    params = compose([f"{app}/data=coco_directory", f"{app}.data.source.path={mine}", f"{app}.data.input_size=32"],
                     project_copy)
    params[app]["data"]["source"]["files"] = files
    write_params(params, project_copy)
    stages.fetch(app, project_copy)
    info = stages.prepare(app, project_copy)
    assert info["classes"] == ["a", "b"]
    assert torch.load(project_copy / f"data/{app}/prepared/test.pt")["images"].shape[1:] == (3, 32, 32)
