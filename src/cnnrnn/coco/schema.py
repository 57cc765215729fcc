"""Writing and reading COCO instances files, with every record checked.

:func:`write_coco` writes one atomically; :func:`load_coco` reads one back. Both run the same
checks (:func:`_check_coco`), so a file written here always loads, and a bad record raises
:class:`~cnnrnn.errors.UserError` naming the file and the record.
"""

from __future__ import annotations

import json
import math
import numbers
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

from cnnrnn.atomic import write_json_atomically
from cnnrnn.errors import UserError

# Real COCO boxes overshoot the image border by a fraction of a pixel (float rounding of the
# polygon extents), so a box may reach this far past each edge before it counts as wrong.
BBOX_TOLERANCE = 1.0

IMAGE_KEYS = ("id", "file_name", "width", "height")
ANNOTATION_KEYS = ("id", "image_id", "category_id", "bbox")
CATEGORY_KEYS = ("id", "name")


def write_coco(json_path: Path, images: Iterable[dict], annotations: Iterable[dict], categories: Iterable[dict],
               info: dict | None = None) -> Path:
    """Write a COCO instances JSON to ``json_path`` atomically; return the path.

    ``images``: ``{"id", "file_name", "width", "height"}`` (more keys, such as ``coco_url``, are kept);
    ``annotations``: ``{"id", "image_id", "category_id", "bbox": [x, y, w, h], "area", "iscrowd"}``,
    where a missing ``area`` becomes ``w * h`` and a missing ``iscrowd`` 0;
    ``categories``: ``{"id", "name"}``. NumPy/PyTorch numbers are written as plain JSON numbers.
    The records are checked as :func:`load_coco` checks them (except image files), so this never
    writes a file that cannot be read back; a bad record raises :class:`UserError` and writes nothing.
    """
    data = {
        "info": _to_json_types(dict(info or {})),
        "licenses": [],  # some COCO readers expect the key, even empty
        "images": [_to_json_types(dict(r)) for r in images],
        "annotations": [_to_json_types(dict(r)) for r in annotations],
        "categories": [_to_json_types(dict(r)) for r in categories],
    }
    _check_coco(data, str(json_path))
    return write_json_atomically(Path(json_path), data)


def load_coco(json_path: Path, image_dir: Path | None, check_files: bool = True) -> dict:
    """Read and check a COCO instances JSON; return it as a dict.

    Checks that it is JSON with ``images``, ``annotations`` and ``categories`` lists; that each
    record has its keys; that ids are unique integers; that each annotation's ``image_id`` and
    ``category_id`` exist; that each ``bbox`` is four finite numbers with ``w > 0``, ``h > 0``
    lying inside its image (within :data:`BBOX_TOLERANCE` pixels); and, with ``check_files`` and
    an ``image_dir``, that ``image_dir / file_name`` exists for every image. The first problem raises
    :class:`UserError` naming the file and the record. Missing ``area`` / ``iscrowd`` are filled in.
    """
    json_path = Path(json_path)
    if not json_path.is_file():
        raise UserError(f"{json_path} not found; run the fetch and prepare stages first (dvc repro)")
    try:
        with json_path.open("rb") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{json_path} is not valid JSON ({err}); the file is damaged or not COCO annotations: "
                        f"delete it and run the stage that writes it again") from err
    return _check_coco(data, str(json_path), Path(image_dir) if check_files and image_dir is not None else None)


def _check_coco(data: Any, source: str, image_dir: Path | None = None) -> dict:
    """The checks of :func:`load_coco` on an in-memory dict; ``source`` names it in messages."""
    fix = "fix or remove this record, or run the stage that wrote the file again"
    if not isinstance(data, dict):
        raise UserError(f"{source}: the top level is a {type(data).__name__}, not a JSON object with "
                        f"images, annotations and categories; this is not a COCO instances file")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            problem = "is missing" if key not in data else f"is a {type(data[key]).__name__}, not a list"
            raise UserError(f"{source}: top-level key {key!r} {problem}; a COCO instances file needs "
                            f"images, annotations and categories lists")

    images = _index_records(data["images"], "image", IMAGE_KEYS, source)
    categories = _index_records(data["categories"], "category", CATEGORY_KEYS, source)
    _index_records(data["annotations"], "annotation", ANNOTATION_KEYS, source)

    for image in data["images"]:
        where = f"{source}: image id {image['id']}"
        for key in ("width", "height"):
            if not _is_int(image[key]) or image[key] <= 0:
                raise UserError(f"{where}: {key} {image[key]!r} is not a positive whole number of pixels; {fix}")
        if not _is_safe_relative(image["file_name"]):
            raise UserError(f"{where}: file_name {image['file_name']!r} must be a relative path inside the "
                            f"image folder (no '..', not absolute); {fix}")
    names = {}
    for category in data["categories"]:
        name = category["name"]
        if not isinstance(name, str) or not name.strip():
            raise UserError(f"{source}: category id {category['id']}: name {name!r} must be a non-empty string; {fix}")
        if name in names:
            raise UserError(f"{source}: category name {name!r} is used by ids {names[name]} and {category['id']}; "
                            f"category names must be unique")
        names[name] = category["id"]

    for ann in data["annotations"]:
        where = f"{source}: annotation id {ann['id']} (image {ann['image_id']!r})"
        if not _is_int(ann["image_id"]) or ann["image_id"] not in images:
            raise UserError(f"{where}: image_id {ann['image_id']!r} is not the id of any image in the file; {fix}")
        if not _is_int(ann["category_id"]) or ann["category_id"] not in categories:
            known = ", ".join(str(c) for c in list(categories)[:10])
            raise UserError(f"{where}: category_id {ann['category_id']!r} is not one of the file's categories "
                            f"({known}); {fix}")
        image = images[ann["image_id"]]
        _check_bbox(ann["bbox"], image["width"], image["height"], where, fix)
        if not _is_int(ann.setdefault("iscrowd", 0)) or ann["iscrowd"] not in (0, 1):
            raise UserError(f"{where}: iscrowd {ann['iscrowd']!r} must be 0 or 1; {fix}")
        area = ann.setdefault("area", ann["bbox"][2] * ann["bbox"][3])
        if not _is_number(area) or area < 0:
            raise UserError(f"{where}: area {area!r} must be a finite number >= 0; {fix}")

    if image_dir is not None:
        missing = [img for img in data["images"] if not (image_dir / img["file_name"]).is_file()]
        if missing:
            more = f" (and {len(missing) - 1} more images are missing)" if len(missing) > 1 else ""
            raise UserError(f"{source}: image id {missing[0]['id']}: file {image_dir / missing[0]['file_name']} "
                            f"not found{more}; run the fetch stage again, or point image_dir at the folder of images")
    return data


def _index_records(records: list, kind: str, required: tuple[str, ...], source: str) -> dict[int, dict]:
    """``{id: record}``, after checking each record is an object with ``required`` keys and a unique integer id."""
    by_id: dict[int, dict] = {}
    index_of: dict[int, int] = {}
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise UserError(f"{source}: {kind} #{index} in the {kind} list is a {type(record).__name__}, "
                            f"not a JSON object; fix or remove it")
        where = f"{kind} id {record['id']}" if "id" in record else f"{kind} #{index} in the list (it has no 'id')"
        if kind == "annotation" and "image_id" in record:
            where += f" (image {record['image_id']!r})"
        for key in required:
            if key not in record:
                raise UserError(f"{source}: {where}: missing key {key!r} (a COCO {kind} needs "
                                f"{', '.join(required)}); fix or remove this record")
        record_id = record["id"]
        if not _is_int(record_id):
            raise UserError(f"{source}: {kind} #{index} in the list: id {record_id!r} must be an integer; "
                            f"fix this record")
        if record_id in by_id:
            raise UserError(f"{source}: {kind} id {record_id} appears twice (records #{index_of[record_id]} and "
                            f"#{index} of the {kind} list); ids must be unique: renumber or remove one")
        by_id[record_id], index_of[record_id] = record, index
    return by_id


def _check_bbox(bbox: Any, width: int, height: int, where: str, fix: str) -> None:
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
        raise UserError(f"{where}: bbox {bbox!r} must be [x, y, w, h], four finite numbers in pixels; {fix}")
    x, y, w, h = bbox
    problem = None
    if w <= 0 or h <= 0:
        problem = f"has {'width' if w <= 0 else 'height'} {w if w <= 0 else h} (must be > 0)"
    elif x < -BBOX_TOLERANCE or y < -BBOX_TOLERANCE:
        problem = f"starts {'left' if x < -BBOX_TOLERANCE else 'above'} of the image (x and y must be >= 0)"
    elif x + w > width + BBOX_TOLERANCE:
        problem = f"extends past the image's width {width} (x + w = {x + w:g})"
    elif y + h > height + BBOX_TOLERANCE:
        problem = f"extends past the image's height {height} (y + h = {y + h:g})"
    if problem:
        raise UserError(f"{where}: bbox {list(bbox)} {problem}; {fix}")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_safe_relative(name: Any) -> bool:
    if not isinstance(name, str) or not name or "\\" in name:
        return False
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and ":" not in path.parts[0]


def _to_json_types(value: Any) -> Any:
    """Plain JSON values: NumPy/PyTorch scalars and arrays become Python numbers and lists."""
    if isinstance(value, dict):
        return {k: _to_json_types(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json_types(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _to_json_types(value.tolist())
    return value
