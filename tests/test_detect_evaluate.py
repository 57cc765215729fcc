"""detect evaluation without a trained model: labels reach COCO by class name, COCOeval scoring, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnrnn.coco.schema import write_coco
from cnnrnn.detect.data import split_categories
from cnnrnn.detect.evaluate import category_ids_by_label, score_detections
from cnnrnn.errors import UserError

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
