"""detect evaluation: labels reach COCO by class name, COCOeval scoring, clear errors (no trained model);
the resampled mAP of the bootstrap intervals against COCOeval itself; validate against evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cnnrnn.coco.average_precision import category_matches, map_intervals, resampled_map
from cnnrnn.coco.schema import write_coco
from cnnrnn.detect.data import split_categories
from cnnrnn.detect.evaluate import (
    category_ids_by_label,
    coco_evaluation,
    score_detections,
)
from cnnrnn.errors import UserError
from conftest import linked_root

# Ids neither contiguous nor in the model's class order.
CATEGORIES = [{"id": 42, "name": "dog"}, {"id": 3, "name": "bird"}, {"id": 7, "name": "cat"}]
MODEL_CLASSES = ["cat", "dog", "bird"]


def write_split(prepared: Path, split: str, categories: list[dict]) -> Path:
    """``instances_<split>.json``: 4 images of 100x80, two boxes each, of every category in turn."""
    images = [{"id": i, "file_name": f"{i}.png", "width": 100, "height": 80} for i in range(1, 5)]
    annotations = []
    for image in images:
        for j, box in enumerate(([5, 5, 30, 20], [50, 40, 25, 30])):
            category = categories[(image["id"] + j) % len(categories)]["id"]
            annotations.append({"id": len(annotations) + 1, "image_id": image["id"], "category_id": category,
                                "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
    path = prepared / f"instances_{split}.json"
    write_coco(path, images, annotations, categories)
    return path


def load_truth(path: Path):
    from pycocotools.coco import COCO

    return COCO(str(path))


def model_detections(truth, classes: list[str]) -> list[tuple[int, list[float], int]]:
    """What a perfect model outputs: (image id, box, label as an index into ``classes``)."""
    return [(ann["image_id"], ann["bbox"], classes.index(truth.cats[ann["category_id"]]["name"]))
            for ann in truth.loadAnns(truth.getAnnIds())]


def test_perfect_detections_score_map_1_with_any_category_ids(tmp_path):
    for split in ("train", "val", "test"):
        write_split(tmp_path, split, CATEGORIES)
    truth = load_truth(tmp_path / "instances_test.json")
    category_ids = category_ids_by_label(MODEL_CLASSES, split_categories(tmp_path), tmp_path / "instances_test.json")
    assert category_ids == [7, 42, 3]
    found = model_detections(truth, MODEL_CLASSES)
    results = [{"image_id": image, "category_id": category_ids[label], "bbox": box, "score": 0.9}
               for image, box, label in found]
    metrics, table = score_detections(truth, results)
    assert metrics == {"map": 1.0, "map_50": 1.0, "map_75": 1.0, "mar_100": 1.0}
    assert table["class"].tolist() == ["bird", "cat", "dog"]  # by category id
    assert table["ap"].tolist() == [1.0, 1.0, 1.0] and table["objects"].sum() == 8
    # The old mapping, label -> the test file's sorted ids, scores the same detections far lower.
    by_sorted_id = [{**r, "category_id": sorted(truth.getCatIds())[label]} for r, (_, _, label) in zip(results, found)]
    assert score_detections(truth, by_sorted_id)[0]["map"] < 0.5


def test_no_detections_score_0_with_a_warning(tmp_path, capsys):
    truth = load_truth(write_split(tmp_path, "test", CATEGORIES))
    metrics, table = score_detections(truth, [])
    assert metrics == {"map": 0.0, "map_50": 0.0, "map_75": 0.0, "mar_100": 0.0}
    assert table["ap"].tolist() == [0.0, 0.0, 0.0]
    assert "no detections" in capsys.readouterr().err


def test_splits_with_different_categories_are_a_clear_error(tmp_path):
    write_split(tmp_path, "train", CATEGORIES)
    write_split(tmp_path, "val", CATEGORIES)
    write_split(tmp_path, "test", [{"id": 42, "name": "dog"}, {"id": 3, "name": "bird"}, {"id": 8, "name": "cat"}])
    with pytest.raises(UserError) as caught:
        split_categories(tmp_path)
    message = str(caught.value)
    assert "instances_test.json" in message and "instances_train.json" in message
    assert "(8, 'cat')" in message and "(7, 'cat')" in message


def test_a_model_class_missing_from_the_test_file_is_a_clear_error(tmp_path):
    source = write_split(tmp_path, "test", CATEGORIES)
    categories = {c["id"]: c["name"] for c in json.loads(source.read_text())["categories"]}
    with pytest.raises(UserError, match=r"instances_test.json has no category named 'horse'.*detect_train"):
        category_ids_by_label(["cat", "horse"], categories, source)


def test_prepare_refuses_splits_with_different_categories_before_anything_is_trained(tmp_path):
    """A COCO directory whose test split names another category stops at prepare, not at evaluate."""
    from cnnrnn.detect.data import prepare

    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    out.mkdir()
    for split in ("train", "val"):
        write_split(raw, split, CATEGORIES)
    write_split(raw, "test", [{"id": 42, "name": "dog"}, {"id": 3, "name": "bird"}, {"id": 7, "name": "horse"}])
    for split in ("train", "val", "test"):
        (raw / split).mkdir()
    params = {"seed": 0, "data": {"name": "coco_directory", "format": "coco", "input_size": 64, "channels": 3}}
    with pytest.raises(UserError, match="list different categories"):
        prepare(params, raw, out)
    assert not list(out.glob("*.pt"))


def noisy_detections(seed: int = 0, n_images: int = 14) -> tuple[dict, list[dict]]:
    """A COCO data set and a detector's results on it, with every case COCOeval's accumulation meets.

    Three categories with ground truth and one without (only false detections); images without
    boxes, one crowd box (its detections are ignored); found boxes shifted by a few pixels (so
    they match at some IoU thresholds only), missed boxes, false detections, and scores in steps
    of 0.1, so many tie, also within one image and category.
    """
    rng = np.random.default_rng(seed)
    categories = [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}, {"id": 5, "name": "bird"},
                  {"id": 9, "name": "horse"}]  # no horse in the ground truth
    images = [{"id": 10 + 3 * i, "file_name": f"{i}.png", "width": 200, "height": 200} for i in range(n_images)]
    annotations, results = [], []
    for image in images:
        for _ in range(int(rng.integers(0, 5))):
            x, y, w, h = (float(v) for v in rng.integers(0, 120, 2).tolist() + rng.integers(10, 70, 2).tolist())
            category = int(rng.choice([1, 2, 5]))
            crowd = int(not annotations)  # the very first box is a crowd
            annotations.append({"id": len(annotations) + 1, "image_id": image["id"], "category_id": category,
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": crowd})
            for _ in range(int(rng.integers(0, 3))):  # 0, 1 or 2 detections of this box
                dx, dy = rng.normal(0, 4, 2)
                results.append({"image_id": image["id"], "category_id": category, "bbox": [x + dx, y + dy, w, h],
                                "score": round(float(rng.integers(1, 10)) / 10, 1)})
        for _ in range(int(rng.integers(0, 3))):  # false detections, of any category
            x, y = rng.integers(0, 150, 2).tolist()
            results.append({"image_id": image["id"], "category_id": int(rng.choice([1, 2, 5, 9])),
                            "bbox": [float(x), float(y), 30.0, 30.0], "score": round(float(rng.integers(1, 10)) / 10, 1)})
    return {"images": images, "annotations": annotations, "categories": categories}, results


def coco_of(dataset: dict):
    import contextlib
    import io

    from pycocotools.coco import COCO

    truth = COCO()
    truth.dataset = json.loads(json.dumps(dataset))
    with contextlib.redirect_stdout(io.StringIO()):
        truth.createIndex()
    return truth


def drawn_copies(dataset: dict, results: list[dict], draw: list[int]) -> tuple[dict, list[dict]]:
    """The data set of the images at positions ``draw`` (of the sorted image ids, with repeats) as new
    images: a drawn image's copies get new ids, one after the other, boxes and detections in their order."""
    ids = sorted(image["id"] for image in dataset["images"])
    by_id = {image["id"]: image for image in dataset["images"]}
    images, annotations, found = [], [], []
    for new_id, position in enumerate(sorted(draw), start=1):
        old = ids[position]
        images.append({**by_id[old], "id": new_id})
        annotations += [{**a, "id": len(annotations) + n + 1, "image_id": new_id}
                        for n, a in enumerate(a for a in dataset["annotations"] if a["image_id"] == old)]
        found += [{**r, "image_id": new_id} for r in results if r["image_id"] == old]
    return {**dataset, "images": images, "annotations": annotations}, found


def test_resampled_map_of_all_images_once_is_cocoevals_map():
    dataset, results = noisy_detections()
    evaluation = coco_evaluation(coco_of(dataset), results)
    assert 0.1 < evaluation.stats[0] < evaluation.stats[1] < 0.95  # neither trivial nor perfect
    matches = category_matches(evaluation)
    assert any(m.has_ties for m in matches)
    p = evaluation.params
    every_image_once = np.ones(len(p.imgIds), dtype=np.int64)
    assert resampled_map(matches, every_image_once, p.iouThrs, p.recThrs) == pytest.approx(
        (evaluation.stats[0], evaluation.stats[1]), abs=1e-6)


@pytest.mark.parametrize("draw", [
    [0, 0, 0, 1, 2, 3, 5, 5, 8, 9, 9, 9, 12, 13],  # some images three times, others left out
    [4, 4, 4, 4, 4, 4, 7, 7, 7, 7, 7, 7, 7, 7],  # two images only
    "seeded",
])
def test_resampled_map_is_cocoevals_map_of_the_drawn_copies(draw):
    """The same numbers as COCOeval run on a data set in which each drawn copy is a new image."""
    dataset, results = noisy_detections()
    if draw == "seeded":
        draw = np.random.default_rng(3).integers(0, len(dataset["images"]), len(dataset["images"])).tolist()
    evaluation = coco_evaluation(coco_of(dataset), results)
    p = evaluation.params
    counts = np.bincount(draw, minlength=len(p.imgIds))
    copies_truth, copies_found = drawn_copies(dataset, results, draw)
    copies = coco_evaluation(coco_of(copies_truth), copies_found)
    assert resampled_map(category_matches(evaluation), counts, p.iouThrs, p.recThrs) == pytest.approx(
        (copies.stats[0], copies.stats[1]), abs=1e-6)


def test_copies_of_an_image_interleave_its_tied_detections_as_cocoeval_does():
    """One image, one true box found once (score 0.5) and a false detection of the same score: drawn twice,
    COCOeval lists hit, miss, hit, miss, not hit, hit, miss, miss. The two orders give different AP@.5."""
    box = [10.0, 10.0, 40.0, 40.0]
    dataset = {"images": [{"id": 1, "file_name": "a.png", "width": 100, "height": 100},
                          {"id": 2, "file_name": "b.png", "width": 100, "height": 100}],
               "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": box, "area": 1600.0, "iscrowd": 0},
                               {"id": 2, "image_id": 2, "category_id": 1, "bbox": box, "area": 1600.0, "iscrowd": 0}],
               "categories": [{"id": 1, "name": "cat"}]}
    results = [{"image_id": 1, "category_id": 1, "bbox": box, "score": 0.5},
               {"image_id": 1, "category_id": 1, "bbox": [60.0, 60.0, 30.0, 30.0], "score": 0.5},
               {"image_id": 2, "category_id": 1, "bbox": box, "score": 0.9}]
    evaluation = coco_evaluation(coco_of(dataset), results)
    p = evaluation.params
    copies_truth, copies_found = drawn_copies(dataset, results, [0, 0, 1])
    copies = coco_evaluation(coco_of(copies_truth), copies_found)
    resampled = resampled_map(category_matches(evaluation), np.array([2, 1]), p.iouThrs, p.recThrs)
    assert resampled == pytest.approx((copies.stats[0], copies.stats[1]), abs=1e-6)


def test_map_intervals_are_reproducible_and_contain_the_map():
    dataset, results = noisy_detections()
    evaluation = coco_evaluation(coco_of(dataset), results)
    first, again = map_intervals(evaluation, 200, seed=7), map_intervals(evaluation, 200, seed=7)
    assert first == again != map_intervals(evaluation, 200, seed=8)
    assert first["map"] == round(evaluation.stats[0], 4) and first["map_50"] == round(evaluation.stats[1], 4)
    for name in ("map", "map_50"):
        assert first[f"{name}_ci95_low"] < first[name] < first[f"{name}_ci95_high"]


def test_scoring_leaves_the_results_as_they_were():
    """COCO.loadRes adds keys to the dicts it gets; the detections written to disk must keep only theirs."""
    dataset, results = noisy_detections()
    before = json.loads(json.dumps(results))
    score_detections(coco_of(dataset), results)
    assert results == before


@pytest.fixture(scope="module")
def tiny_detector(tmp_path_factory) -> tuple[dict, Path, Path]:
    """(params, prepared, model_dir): real digit scenes (8 val and 8 test images) and a detector trained
    for two batches, saved as the train stage saves it."""
    import pytorch_lightning as pl

    from cnnrnn.config import compose
    from cnnrnn.detect.data import prepare
    from cnnrnn.detect.model import make_datamodule, make_module, save_model
    from cnnrnn.fetching import fetch_sources

    composed = compose(["detect.data.images.train=16", "detect.data.images.val=8", "detect.data.images.test=8"],
                       Path(__file__).resolve().parents[1])
    params = {**composed["detect"], "seed": composed["seed"]}
    base = tmp_path_factory.mktemp("detect")
    fetch_sources(params["data"]["source"], base / "raw")
    (base / "prepared").mkdir()
    prepare(params, base / "raw", base / "prepared")
    pl.seed_everything(0, verbose=False)
    dm = make_datamodule(params, base / "prepared")
    dm.setup("fit")
    module = make_module(params, dm)
    pl.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=0, logger=False, enable_checkpointing=False,
               enable_progress_bar=False, enable_model_summary=False).fit(module, datamodule=dm)
    save_model(module, base / "model", dm, params)
    return params, base / "prepared", base / "model"


def test_validate_measures_a_split_as_evaluate_does_and_writes_nothing(tiny_detector, tmp_path):
    from cnnrnn.detect.evaluate import evaluate, validate

    params, prepared, model_dir = tiny_detector
    paths = linked_root(tmp_path / "same", "detect", prepared, model_dir, val_is_test=True)
    twin = validate(params, paths)
    assert set(twin) == {"val_map", "val_map_50"}
    assert not list(paths.plots.iterdir()) and not (paths.root / "data/detect/evaluation").exists()
    metrics, files = evaluate(params, paths)
    assert (twin["val_map"], twin["val_map_50"]) == (metrics["map"], metrics["map_50"])  # same images, same code
    for name in ("map", "map_50"):  # a two-batch detector scores about 0: the scoring is checked above, on known boxes
        assert metrics[f"{name}_ci95_low"] <= metrics[name] <= metrics[f"{name}_ci95_high"]
    assert {"map_75", "mar_100", "n_test_images", "n_test_objects"} <= set(metrics) and all(f.exists() for f in files)
    written = json.loads((paths.root / "data/detect/evaluation/detections_test.json").read_text())
    assert written and all(set(r) == {"image_id", "category_id", "bbox", "score"} for r in written)
    real = validate(params, linked_root(tmp_path / "real", "detect", prepared, model_dir))
    assert 0 <= real["val_map"] <= real["val_map_50"] <= 1
