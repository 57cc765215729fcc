"""Pascal VOC XML -> COCO: :func:`coco_from_voc`, e.g. for Oxford-IIIT Pet's head boxes."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath
from typing import Callable

from cnnrnn.coco.schema import _check_coco, _is_safe_relative
from cnnrnn.errors import UserError


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
