"""COCO-format boxes: the one annotation format of object detection (``detect``) and localization (``localize``).

Every box on disk is a COCO *instances* JSON: ``images`` (``id``, ``file_name``, ``width``,
``height``), ``annotations`` (``id``, ``image_id``, ``category_id``, ``bbox = [x, y, w, h]`` in
pixels from the top-left corner, ``area``, ``iscrowd``) and ``categories`` (``id``, ``name``).
What produces it:

* :func:`fetch_coco_subset`: a few categories of real COCO (``instances_val2017.json`` read
  straight out of the annotations zip), downloading only the images it selects;
* :func:`coco_from_voc`: Pascal VOC XML files, such as Oxford-IIIT Pet's head boxes;
* :func:`write_coco`: anything else, such as a synthetic data set drawn in memory.

What reads it: :func:`load_coco`, which checks every record and names the file and record
of the first problem, so a bad box is caught at ``prepare`` rather than deep inside training.
pycocotools (imported only where used) is the reference reader; everything written here loads in it.
"""

from __future__ import annotations

import contextlib
import difflib
import http.client
import io
import json
import math
import numbers
import os
import random
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable

import numpy as np

from cnnrnn.atomic import write_json_atomically
from cnnrnn.errors import UserError
from cnnrnn.fetching import CHUNK, USER_AGENT

# Real COCO boxes overshoot the image border by a fraction of a pixel (float rounding of the
# polygon extents), so a box may reach this far past each edge before it counts as wrong.
BBOX_TOLERANCE = 1.0
OFFLINE_HINT = "use the embedded default instead: -S 'detect/data=digits_on_textures'"

IMAGE_KEYS = ("id", "file_name", "width", "height")
ANNOTATION_KEYS = ("id", "image_id", "category_id", "bbox")
CATEGORY_KEYS = ("id", "name")


# --------------------------------------------------------------------------- writing and reading

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


@contextlib.contextmanager
def _quiet():
    """pycocotools prints progress lines ('creating index...') to stdout; keep them out of ours."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


# --------------------------------------------------------------------------- choosing a subset

def select_coco_subset(annotations: dict, categories: list[str], max_images: int, seed: int) -> dict:
    """A new COCO dict with at most ``max_images`` images showing any of ``categories`` (names).

    ``annotations`` is a whole COCO instances dict (e.g. ``instances_val2017.json``), unchanged.
    An image qualifies when it holds at least one usable box of a named category: not a crowd
    region (``iscrowd == 1``) and not empty (``w > 0`` and ``h > 0``). The qualifying image ids are sorted,
    shuffled with ``random.Random(seed)`` and the first ``max_images`` kept, so the choice depends
    only on the data and the seed. The result keeps those images (sorted by id, every field kept,
    ``coco_url`` included), only their usable boxes of the named categories, and categories
    renumbered 1..K in the order of ``categories``. Its ``info`` records the choice.
    """
    from pycocotools.coco import COCO

    names = [categories] if isinstance(categories, str) else [str(c) for c in categories]
    if not names:
        raise UserError("no COCO categories named; list at least one, e.g. categories: [person, dog, cat]")
    if len(set(names)) != len(names):
        raise UserError(f"COCO categories {names} name one twice; list each category once")
    if not _is_int(max_images) or max_images <= 0:
        raise UserError(f"max_images {max_images!r} must be a positive whole number")
    _check_top_level(annotations, "the COCO annotations")

    coco = COCO()
    with _quiet():
        coco.dataset = annotations
        coco.createIndex()
    old_ids = []
    for name in names:
        found = coco.getCatIds(catNms=[name])
        if not found:
            raise UserError(_unknown_category_message(name, [c["name"] for c in annotations["categories"]]))
        old_ids.append(found[0])
    new_id = {old: k + 1 for k, old in enumerate(old_ids)}

    # The union of getImgIds(catIds=[id]) per category, but counted through the usable boxes: an
    # image whose only box of these categories is a crowd region would be a picture of, say,
    # people with no person box to learn from.
    wanted = coco.loadAnns(coco.getAnnIds(catIds=old_ids))
    usable = [ann for ann in wanted if not ann.get("iscrowd", 0) and not _is_empty_box(ann["bbox"])]
    candidates = sorted({ann["image_id"] for ann in usable})
    random.Random(seed).shuffle(candidates)
    chosen = set(candidates[:max_images])

    images = [dict(coco.imgs[i]) for i in sorted(chosen)]
    boxes = [dict(ann, category_id=new_id[ann["category_id"]]) for ann in usable if ann["image_id"] in chosen]
    boxes.sort(key=lambda ann: ann["id"])
    cats = [{"id": new_id[old], **{k: v for k, v in coco.cats[old].items() if k != "id"}} for old in old_ids]
    info = {"description": f"COCO subset: {', '.join(names)}", "source_info": annotations.get("info", {}),
            "categories": names, "max_images": max_images, "seed": seed, "candidate_images": len(candidates),
            "dropped_crowd_or_empty_boxes": len(wanted) - len(usable)}
    return {"info": info, "licenses": annotations.get("licenses", []),
            "images": images, "annotations": boxes, "categories": cats}


def _is_empty_box(bbox: Any) -> bool:
    """A well-formed box with no width or height (a malformed one is left for the checks to report)."""
    well_formed = isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)
    return well_formed and (bbox[2] <= 0 or bbox[3] <= 0)


def _check_top_level(data: Any, source: str) -> None:
    """Just enough structure for pycocotools to index ``data`` without a KeyError."""
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations", "categories")):
        raise UserError(f"{source} are not a COCO instances dict with images, annotations and categories lists")
    for kind, keys in (("images", ("id",)), ("categories", ("id", "name")),
                       ("annotations", ("id", "image_id", "category_id", "bbox"))):
        for index, record in enumerate(data[kind]):
            if not isinstance(record, dict) or any(k not in record for k in keys):
                raise UserError(f"{source}: {kind} #{index} lacks one of {', '.join(keys)}; the file is damaged "
                                f"or not COCO instances: delete it and fetch again")


def _unknown_category_message(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=3)
    guess = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    examples = ", ".join(repr(c) for c in valid[:8])
    return (f"unknown COCO category {name!r}; {guess}valid names include {examples} ({len(valid)} in all); "
            f"fix the category list in conf/")


# --------------------------------------------------------------------------- fetching a subset

def fetch_coco_subset(annotations_zip: Path, member: str, categories: list[str], max_images: int, seed: int,
                      out_dir: Path, image_base_url: str | None = None, workers: int = 8, progress: bool = True,
                      timeout: float = 60.0, offline_hint: str = OFFLINE_HINT) -> dict:
    """Select a COCO subset from ``annotations_zip`` and download just its images into ``out_dir``.

    ``member`` is the JSON inside the zip (``"annotations/instances_val2017.json"``); it is read
    from the zip without extracting it. The subset is :func:`select_coco_subset`'s. Each image
    comes from its ``coco_url``, or from ``image_base_url + file_name`` when that is given (a mirror,
    or a test server), with ``workers`` downloads at a time, to ``out_dir/images/<file_name>``.
    A download goes to ``<file_name>.part`` (resumed with a Range request after an interruption),
    is decoded once with Pillow and must have the annotated width and height, then is renamed into
    place; an image already in place that passes the same check is not downloaded again.
    ``out_dir/instances.json`` is written last, with :func:`write_coco`.

    Returns ``{"images": n, "annotations": n, "categories": [names], "downloaded": n}``
    (``downloaded``: images fetched by this call). Offline, raises :class:`UserError` with ``offline_hint``.
    """
    from tqdm import tqdm

    annotations_zip, out_dir = Path(annotations_zip), Path(out_dir)
    source = f"{annotations_zip}!{member}"  # for messages; instances.json records only the zip's name (no paths)
    subset = select_coco_subset(_read_zip_json(annotations_zip, member), categories, max_images, seed)
    _check_coco(subset, source)

    image_dir = out_dir / "images"
    jobs = []
    for image in subset["images"]:
        if image_base_url:
            url = image_base_url.rstrip("/") + "/" + image["file_name"]
        elif image.get("coco_url"):
            url = image["coco_url"]
        else:
            raise UserError(f"{source}: image id {image['id']} has no coco_url; give image_base_url "
                            f"(where the images can be downloaded from) in conf/")
        jobs.append((url, image_dir / image["file_name"], image["width"], image["height"]))

    downloaded = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
            tqdm(total=len(jobs), unit="img", desc="fetch COCO images", disable=not progress) as bar:
        futures = [pool.submit(_download_image, *job, timeout=timeout, offline_hint=offline_hint) for job in jobs]
        try:
            for future in as_completed(futures):
                downloaded += future.result()
                bar.update(1)
        except BaseException:
            for future in futures:  # stop the queued downloads; those under way finish or fail on their own
                future.cancel()
            raise

    write_coco(out_dir / "instances.json", subset["images"], subset["annotations"], subset["categories"],
               info=subset["info"] | {"source": f"{annotations_zip.name}!{member}"})
    return {"images": len(subset["images"]), "annotations": len(subset["annotations"]),
            "categories": [c["name"] for c in subset["categories"]], "downloaded": downloaded}


def _read_zip_json(archive: Path, member: str) -> Any:
    """Parse the JSON ``member`` of a zip archive, straight from the archive."""
    if not archive.is_file():
        raise UserError(f"{archive} not found; run the fetch stage, which downloads the COCO annotations zip first")
    try:
        with zipfile.ZipFile(archive) as zf:
            if member not in zf.namelist():
                listed = [n for n in zf.namelist() if n.endswith(".json")][:8]
                raise UserError(f"{archive} has no member {member!r}; its JSON members include {listed}: "
                                f"fix the member name in conf/")
            with zf.open(member) as f:
                return json.load(f)
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise UserError(f"{archive} is corrupt or not a zip archive ({err}); delete it and fetch again") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{archive}!{member} is not valid JSON ({err}); delete the zip and fetch again") from err


def _download_image(url: str, dest: Path, width: int, height: int, timeout: float, offline_hint: str) -> int:
    """Put the image at ``url`` at ``dest``, checked to be ``width`` x ``height``; 1 if downloaded, 0 if kept.

    Like :func:`cnnrnn.fetching.download_url`, but COCO pins no checksum per image, so the check
    is that Pillow decodes it at the annotated size.
    """
    if dest.is_file():
        try:
            _check_image(dest, width, height, url)
            return 0
        except UserError:
            dest.unlink()  # a damaged or stale copy: fetch it again
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the part file already holds every byte
            response = None
        else:
            raise UserError(f"download of {url} failed: HTTP {err.code} {err.reason}; check image_base_url "
                            f"in conf/ (or that the mirror has the image)") from err
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise UserError(f"cannot download {url} ({reason}): this machine looks offline or the server is down; "
                        f"{offline_hint}") from err
    if response is not None:
        with response:
            resumed = bool(have) and response.status == 206
            length = response.headers.get("Content-Length")
            total = (have if resumed else 0) + int(length) if length else None
            with part.open("ab" if resumed else "wb") as out:
                while True:
                    try:
                        block = response.read(CHUNK)
                    except (OSError, ValueError, http.client.HTTPException) as err:  # reset, IncompleteRead, timeout
                        if isinstance(err, http.client.IncompleteRead):
                            out.write(err.partial)  # keep what arrived, so the resume asks only for the rest
                        raise UserError(f"download of {url} was interrupted after {out.tell()} bytes ({err}); "
                                        f"run the fetch again to resume") from err
                    if not block:
                        break
                    out.write(block)
            if total is not None and part.stat().st_size < total:
                raise UserError(f"download of {url} was cut off at {part.stat().st_size} of {total} bytes; "
                                f"run the fetch again to resume")
    try:
        _check_image(part, width, height, url)
    except UserError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return 1


def _check_image(path: Path, width: int, height: int, origin: str) -> None:
    """Decode ``path`` fully with Pillow; it must be ``width`` x ``height`` pixels."""
    from PIL import Image

    name = path.name.removesuffix(".part")
    try:
        with Image.open(path) as image:
            image.load()
            size = image.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise UserError(f"{name} from {origin} is not a readable image ({err}); it was removed: "
                        f"run the fetch again") from err
    if size != (width, height):
        raise UserError(f"{name} from {origin} is {size[0]}x{size[1]} pixels but the annotations say {width}x{height}; "
                        f"it is not the image the annotations describe: check image_base_url in conf/")


# --------------------------------------------------------------------------- Pascal VOC

def oxford_pet_breed(file_name: str) -> str:
    """The breed in an Oxford-IIIT Pet file name: ``"Abyssinian_100.jpg"`` -> ``"Abyssinian"``,
    ``"american_bulldog_12.jpg"`` -> ``"american_bulldog"`` (a ``class_of`` for :func:`coco_from_voc`)."""
    return PurePosixPath(file_name).stem.rsplit("_", 1)[0]


def coco_from_voc(xml_dir: Path, image_dir: Path, class_of: Callable[[str], str | None] | None = None) -> dict:
    """A COCO dict from the Pascal VOC XML files ``xml_dir/*.xml`` whose images are in ``image_dir``.

    Each file is ``<annotation><filename/><size><width/><height/></size><object><name/>
    <bndbox><xmin/><ymin/><xmax/><ymax/></bndbox></object>...</annotation>``. A box's category is
    ``class_of(filename)`` when that gives a name (e.g. :func:`oxford_pet_breed`), else its
    ``<name>``. VOC corners are 1-based and inclusive, so ``[xmin, xmax]`` becomes
    ``x = xmin - 1, w = xmax - xmin + 1`` (clipped to the image). Images are numbered 1..N in
    file-name order of the XML files, categories 1..K in name order. A missing ``<size>`` is read
    from the image. A malformed file raises :class:`UserError` naming it.
    """
    from PIL import Image

    xml_dir, image_dir = Path(xml_dir), Path(image_dir)
    files = sorted(xml_dir.glob("*.xml"))
    if not files:
        raise UserError(f"no Pascal VOC .xml files in {xml_dir}; check the annotations were fetched and extracted there")
    images, objects, seen = [], [], {}
    for xml_file in files:
        try:
            root = ET.parse(xml_file).getroot()
        except ET.ParseError as err:
            raise UserError(f"{xml_file} is not valid XML ({err}); delete it (or its image's entry) "
                            f"and fetch the annotations again") from err
        file_name = (root.findtext("filename") or "").strip()
        if root.tag != "annotation" or not file_name:
            raise UserError(f"{xml_file} is not a Pascal VOC annotation (it needs <annotation><filename>); "
                            f"remove it from {xml_dir}")
        if not _is_safe_relative(file_name):
            raise UserError(f"{xml_file}: <filename> {file_name!r} must be a plain file name inside the image folder")
        if file_name in seen:
            raise UserError(f"{xml_file} and {seen[file_name]} both describe {file_name}; remove one of them")
        seen[file_name] = xml_file
        image_path = image_dir / file_name
        if not image_path.is_file():
            raise UserError(f"{xml_file}: its image {image_path} not found; fetch the images into {image_dir}")
        width, height = _voc_int(root, "size/width", xml_file), _voc_int(root, "size/height", xml_file)
        if not width or not height:  # some VOC writers leave <size> out or zero: the image knows
            with Image.open(image_path) as image:
                width, height = image.size
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        for k, obj in enumerate(root.findall("object")):
            where = f"{xml_file}: <object> #{k + 1}"
            name = class_of(file_name) if class_of else None
            name = name or (obj.findtext("name") or "").strip()
            if not name:
                raise UserError(f"{where} has no <name>; give it one or pass a class_of that names {file_name}")
            box = obj.find("bndbox")
            if box is None:
                raise UserError(f"{where} has no <bndbox>; add the box or remove the object")
            xmin, ymin, xmax, ymax = (_voc_float(box, tag, where) for tag in ("xmin", "ymin", "xmax", "ymax"))
            x0, y0 = max(0.0, xmin - 1), max(0.0, ymin - 1)
            x1, y1 = min(float(width), xmax), min(float(height), ymax)
            if x1 <= x0 or y1 <= y0:
                raise UserError(f"{where}: box ({xmin:g}, {ymin:g})-({xmax:g}, {ymax:g}) is empty or outside the "
                                f"{width}x{height} image; fix or remove the object")
            objects.append((image_id, name, [x0, y0, x1 - x0, y1 - y0]))

    category_id = {name: k + 1 for k, name in enumerate(sorted({name for _, name, _ in objects}))}
    annotations = [{"id": k + 1, "image_id": image_id, "category_id": category_id[name], "bbox": bbox,
                    "area": bbox[2] * bbox[3], "iscrowd": 0}
                   for k, (image_id, name, bbox) in enumerate(objects)]
    categories = [{"id": i, "name": name} for name, i in category_id.items()]
    data = {"info": {"description": f"converted from {len(files)} Pascal VOC XML files in {xml_dir.name}/"},
            "licenses": [],
            "images": images, "annotations": annotations, "categories": categories}
    return _check_coco(data, str(xml_dir))


def _voc_int(root: ET.Element, path: str, xml_file: Path) -> int:
    text = (root.findtext(path) or "").strip()
    if not text:
        return 0
    try:
        return int(float(text))
    except ValueError:
        raise UserError(f"{xml_file}: <{path.replace('/', '><')}> {text!r} is not a number; fix the file") from None


def _voc_float(box: ET.Element, tag: str, where: str) -> float:
    text = (box.findtext(tag) or "").strip()
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise UserError(f"{where}: <bndbox><{tag}> {text!r} is not a number; fix the file")
    return value


def split_coco(coco: dict[str, Any], fractions: dict[str, float], seed: int) -> dict[str, dict[str, Any]]:
    """Split one COCO dict by image into train/val/test, drawn by ``seed``."""
    ids = sorted(r["id"] for r in coco["images"])
    rng = np.random.default_rng(seed)
    rng.shuffle(ids)
    n_test, n_val = int(round(fractions["test"] * len(ids))), int(round(fractions["val"] * len(ids)))
    chosen = {"test": set(ids[:n_test]), "val": set(ids[n_test:n_test + n_val]), "train": set(ids[n_test + n_val:])}
    return {split: {**coco, "images": [r for r in coco["images"] if r["id"] in keep],
                    "annotations": [a for a in coco["annotations"] if a["image_id"] in keep]}
            for split, keep in chosen.items()}


def write_coco_splits(coco: dict[str, Any], image_dir: Path, out: Path, fractions: dict[str, float], seed: int) -> None:
    """Split ``coco`` by image (:func:`split_coco`) and write ``out/instances_<split>.json`` with
    each split's images copied to ``out/<split>/``."""
    import shutil

    for split, part in split_coco(coco, fractions, seed).items():
        (out / split).mkdir(parents=True, exist_ok=True)
        for record in part["images"]:
            shutil.copy2(image_dir / record["file_name"], out / split / record["file_name"])
        write_coco(out / f"instances_{split}.json", part["images"], part["annotations"], part["categories"])
