"""A subset of real COCO: a few categories, a few images, and only those images downloaded.

:func:`select_coco_subset` chooses the images with pycocotools; :func:`fetch_coco_subset` reads
the annotations straight out of the COCO annotations zip and downloads the chosen images with
:func:`cnnrnn.fetching.download_url` (resumable, atomic), each checked to decode at its annotated size.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import json
import random
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from cnnrnn.coco.schema import _check_coco, _is_int, _is_number, write_coco
from cnnrnn.errors import UserError
from cnnrnn.fetching import download_url

OFFLINE_HINT = "use the embedded default instead: -S 'detect/data=digits_on_textures'"


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

    COCO pins no checksum per image, so the check is that Pillow decodes it at the annotated size.
    """
    def check(path: Path) -> None:
        _check_image(path, width, height, url)

    if dest.is_file():  # checked here, not only in download_url, to tell a kept image from a downloaded one
        with contextlib.suppress(UserError):
            check(dest)
            return 0
    download_url(url, dest, None, timeout=timeout, progress=False, offline_hint=offline_hint, verify=check,
                 url_hint="check image_base_url in conf/ (or that the mirror has the image)")
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
