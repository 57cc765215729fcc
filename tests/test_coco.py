"""COCO boxes, for real: files pycocotools reads, a local HTTP server, real JPEGs and VOC XML.

Nothing is mocked. A ``ThreadingHTTPServer`` on 127.0.0.1 serves a tiny COCO annotations zip
(``annotations/instances_val2017.json``: six images, three categories) and the six JPEGs it
describes, honours ``Range: bytes=N-`` and can hang up part-way through a body.
"""

from __future__ import annotations

import copy
import io
import json
import random
import socket
import threading
import zipfile
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnrnn.coco.schema import load_coco, write_coco
from cnnrnn.coco.subset import fetch_coco_subset, select_coco_subset
from cnnrnn.coco.voc import coco_from_voc, oxford_pet_breed
from cnnrnn.errors import UserError
from cnnrnn.fetching import download_url, file_checksum

MEMBER = "annotations/instances_val2017.json"


# --------------------------------------------------------------------------- the HTTP server

class FileHandler(BaseHTTPRequestHandler):
    """Serves ``server.root`` with ``Range: bytes=N-`` support; logs ``(path, Range)`` in ``server.requests``.

    ``server.cut[path] = K`` announces the full length but sends only K bytes, then hangs up.
    """

    def do_GET(self):
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        file = srv.root / self.path.lstrip("/")
        if not file.is_file():
            return self.send_error(404)
        data = file.read_bytes()
        start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-")) if self.headers.get("Range") else 0
        if start and start >= len(data):
            return self.send_error(416)
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: srv.cut.get(self.path, len(body))])
        self.close_connection = True

    def log_message(self, *args):  # keep pytest's output clean
        pass


@contextmanager
def serving(root: Path):
    """A live server for ``root`` on a free port of 127.0.0.1; ``server.url`` ends in ``/``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FileHandler)
    server.root, server.cut, server.requests = root, {}, []
    server.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def image_requests(server) -> list[str]:
    return sorted(path for path, _ in server.requests if path.endswith(".jpg"))


# --------------------------------------------------------------------------- a tiny COCO

# Real COCO category ids (person 1, cat 17, dog 18), so the renumbering to 1..K is exercised.
PERSON, CAT, DOG = 1, 17, 18
SIZES = {1: (40, 30), 2: (32, 32), 3: (48, 24), 4: (24, 40), 5: (36, 28), 6: (30, 30)}  # id -> (width, height)
BOXES = [  # (annotation id, image id, category id, bbox, iscrowd)
    (101, 1, PERSON, [2, 3, 10, 12], 0),
    (102, 2, DOG, [0, 0, 32, 32], 0),            # touches every border
    (103, 3, CAT, [5.5, 1.25, 20, 10.5], 0),
    (104, 3, PERSON, [30, 2, 10, 20], 0),
    (105, 5, PERSON, [1, 1, 20, 20], 1),          # image 5 holds only a crowd region
    (106, 6, DOG, [3, 3, 12, 12], 0),
    (107, 6, CAT, [10, 10, 19.6, 20.4], 1),       # a crowd cat next to a real dog
    (108, 6, CAT, [15, 15, 15, 15], 0),
]                                                  # image 4 has no boxes at all


def tiny_coco(base_url: str = "http://images.invalid/") -> dict:
    """``instances_val2017.json`` in miniature, each ``coco_url`` under ``base_url``."""
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "width": w, "height": h, "license": 1,
               "coco_url": f"{base_url}val2017/{i:012d}.jpg"} for i, (w, h) in SIZES.items()]
    annotations = [{"id": a, "image_id": i, "category_id": c, "bbox": b, "area": b[2] * b[3], "iscrowd": crowd,
                    "segmentation": [[b[0], b[1], b[0] + b[2], b[1], b[0] + b[2], b[1] + b[3]]]}
                   for a, i, c, b, crowd in BOXES]
    categories = [{"id": PERSON, "name": "person", "supercategory": "person"},
                  {"id": CAT, "name": "cat", "supercategory": "animal"},
                  {"id": DOG, "name": "dog", "supercategory": "animal"}]
    return {"info": {"description": "tiny COCO"}, "licenses": [{"id": 1, "name": "test"}],
            "images": images, "annotations": annotations, "categories": categories}


def jpeg(width: int, height: int, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def loads_in_pycocotools(path: Path):
    from pycocotools.coco import COCO

    return COCO(str(path))


# --------------------------------------------------------------------------- write_coco / load_coco

def test_write_coco_round_trips_through_pycocotools(tmp_path):
    """What write_coco writes, pycocotools indexes; load_coco gives back the same records."""
    data = tiny_coco()
    path = write_coco(tmp_path / "sub" / "instances.json", data["images"], data["annotations"],
                      data["categories"], info={"description": "round trip"})
    coco = loads_in_pycocotools(path)
    assert sorted(coco.getAnnIds(imgIds=[6])) == [106, 107, 108]
    assert coco.getAnnIds(catIds=[CAT], iscrowd=False) == [103, 108]
    assert coco.getCatIds(catNms=["dog"]) == [DOG]
    loaded = load_coco(path, image_dir=None, check_files=False)
    assert loaded["annotations"] == data["annotations"] and loaded["images"] == data["images"]
    assert loaded["info"] == {"description": "round trip"}
    assert not list(path.parent.glob(".*.tmp"))


def test_write_coco_fills_defaults_and_plain_numbers(tmp_path):
    """NumPy values become JSON numbers; a missing area is w * h and a missing iscrowd 0."""
    images = [{"id": np.int64(1), "file_name": "a.jpg", "width": np.int32(20), "height": 10}]
    annotations = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": np.array([1.0, 2.0, 4.0, 5.0])}]
    path = write_coco(tmp_path / "i.json", images, annotations, [{"id": 1, "name": "digit"}])
    ann = json.loads(path.read_text())["annotations"][0]
    assert ann == {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1.0, 2.0, 4.0, 5.0], "area": 20.0, "iscrowd": 0}
    assert "bbox" in annotations[0] and "area" not in annotations[0]  # the caller's records are not changed


def test_write_coco_refuses_bad_records_and_writes_nothing(tmp_path):
    data = tiny_coco()
    data["annotations"][0]["category_id"] = 99
    with pytest.raises(UserError, match=r"annotation id 101 \(image 1\): category_id 99"):
        write_coco(tmp_path / "i.json", data["images"], data["annotations"], data["categories"])
    assert list(tmp_path.iterdir()) == []


def test_load_coco_allows_a_pixel_of_rounding(tmp_path):
    """Real COCO boxes overshoot the border by a fraction of a pixel: that is accepted."""
    data = tiny_coco()
    data["annotations"][1]["bbox"] = [-0.4, 0, 32.9, 32.5]
    path = tmp_path / "i.json"
    path.write_text(json.dumps(data))
    assert load_coco(path, None, check_files=False)["annotations"][1]["bbox"] == [-0.4, 0, 32.9, 32.5]


def _drop(record: dict, key: str) -> None:
    del record[key]


# (what to break, what the message must say besides the file name)
MALFORMED = {
    "missing bbox": (lambda d: _drop(d["annotations"][2], "bbox"), r"annotation id 103 \(image 3\): missing key 'bbox'"),
    "missing width": (lambda d: _drop(d["images"][1], "width"), r"image id 2: missing key 'width'"),
    "missing categories": (lambda d: _drop(d, "categories"), r"top-level key 'categories' is missing"),
    "bbox past width": (lambda d: d["annotations"][0].update(bbox=[10, 5, 300, 20]),
                        r"annotation id 101 \(image 1\): bbox \[10, 5, 300, 20\] extends past the image's width 40"),
    "bbox past height": (lambda d: d["annotations"][0].update(bbox=[0, 25, 5, 7]),
                         r"annotation id 101 \(image 1\): bbox .* extends past the image's height 30"),
    "negative x": (lambda d: d["annotations"][0].update(bbox=[-3, 0, 5, 5]), r"annotation id 101 .* starts left"),
    "zero width": (lambda d: d["annotations"][0].update(bbox=[1, 1, 0, 5]), r"annotation id 101 .* width 0"),
    "bbox NaN": (lambda d: d["annotations"][0].update(bbox=[1, 1, float("nan"), 5]), r"annotation id 101 .* four finite"),
    "bbox three numbers": (lambda d: d["annotations"][0].update(bbox=[1, 1, 5]), r"annotation id 101 .* \[x, y, w, h\]"),
    "unknown category": (lambda d: d["annotations"][3].update(category_id=99),
                         r"annotation id 104 \(image 3\): category_id 99 is not one of the file's categories"),
    "unknown image": (lambda d: d["annotations"][3].update(image_id=42), r"annotation id 104 \(image 42\): image_id 42"),
    "duplicate image id": (lambda d: d["images"][4].update(id=2), r"image id 2 appears twice \(records #1 and #4"),
    "duplicate annotation id": (lambda d: d["annotations"][5].update(id=101), r"annotation id 101 appears twice"),
    "string id": (lambda d: d["categories"][0].update(id="1"), r"category #0 in the list: id '1' must be an integer"),
    "file outside folder": (lambda d: d["images"][0].update(file_name="../x.jpg"), r"image id 1: file_name '../x.jpg'"),
    "iscrowd 2": (lambda d: d["annotations"][0].update(iscrowd=2), r"annotation id 101 .* iscrowd 2"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_coco_names_file_and_record(tmp_path, case):
    break_it, expected = MALFORMED[case]
    data = tiny_coco()
    break_it(data)
    path = tmp_path / "instances_val.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=expected) as err:
        load_coco(path, None, check_files=False)
    assert "instances_val.json" in str(err.value)


def test_missing_image_file_is_named(tmp_path):
    data = tiny_coco()
    path = tmp_path / "instances_val.json"
    path.write_text(json.dumps(data))
    image_dir = tmp_path / "images"
    image_dir.mkdir()
    for image in data["images"]:
        if image["id"] not in (2, 5):
            (image_dir / image["file_name"]).write_bytes(b"")
    with pytest.raises(UserError, match=r"instances_val.json: image id 2: file .*000000000002.jpg not found "
                                        r"\(and 1 more images are missing\); run the fetch stage"):
        load_coco(path, image_dir)
    (image_dir / "000000000002.jpg").write_bytes(b"")
    (image_dir / "000000000005.jpg").write_bytes(b"")
    assert len(load_coco(path, image_dir)["images"]) == 6


def test_not_json_is_a_user_error(tmp_path):
    path = tmp_path / "instances_val.json"
    path.write_text('{"images": [}')
    with pytest.raises(UserError, match=r"instances_val.json is not valid JSON .*line 1 column 13"):
        load_coco(path, None, check_files=False)
    with pytest.raises(UserError, match=r"nothere.json not found"):
        load_coco(tmp_path / "nothere.json", None)


# --------------------------------------------------------------------------- select_coco_subset

def test_select_picks_images_with_usable_boxes_and_renumbers():
    """Only images with a non-crowd box of a named category; categories become 1..K in the given order."""
    data = tiny_coco()
    original = copy.deepcopy(data)
    subset = select_coco_subset(data, ["dog", "cat"], max_images=10, seed=0)
    assert data == original  # the input is not changed
    assert [img["id"] for img in subset["images"]] == [2, 3, 6]
    assert [(a["id"], a["category_id"]) for a in subset["annotations"]] == [(102, 1), (103, 2), (106, 1), (108, 2)]
    assert subset["categories"] == [{"id": 1, "name": "dog", "supercategory": "animal"},
                                    {"id": 2, "name": "cat", "supercategory": "animal"}]
    assert subset["images"][0]["coco_url"].endswith("val2017/000000000002.jpg")
    # image 5's person is a crowd region only, so it is not a person image
    people = select_coco_subset(data, ["person"], max_images=10, seed=0)
    assert [img["id"] for img in people["images"]] == [1, 3]
    assert [a["id"] for a in people["annotations"]] == [101, 104]


def test_select_is_deterministic_in_seed_not_in_input_order():
    """Sorted ids, then a seeded shuffle: the same seed gives the same images however the input is ordered."""
    data = tiny_coco()
    names = ["person", "dog", "cat"]  # candidates: images 1, 2, 3, 6
    shuffled = copy.deepcopy(data)
    random.Random(7).shuffle(shuffled["images"])
    random.Random(8).shuffle(shuffled["annotations"])
    chosen = {}
    for seed in range(6):
        subset = select_coco_subset(data, names, max_images=2, seed=seed)
        ids = [img["id"] for img in subset["images"]]
        expected = [1, 2, 3, 6]
        random.Random(seed).shuffle(expected)
        assert ids == sorted(expected[:2])
        assert [img["id"] for img in select_coco_subset(shuffled, names, 2, seed)["images"]] == ids
        assert {a["image_id"] for a in subset["annotations"]} == set(ids)
        chosen[seed] = tuple(ids)
    assert len(set(chosen.values())) > 1  # the seed does matter


def test_select_unknown_category_lists_valid_names():
    with pytest.raises(UserError, match=r"unknown COCO category 'dgo'; did you mean 'dog'\? valid names include "
                                        r"'person', 'cat', 'dog' \(3 in all\)"):
        select_coco_subset(tiny_coco(), ["person", "dgo"], max_images=5, seed=0)
    with pytest.raises(UserError, match="max_images"):
        select_coco_subset(tiny_coco(), ["person"], max_images=0, seed=0)


# --------------------------------------------------------------------------- fetch_coco_subset

@pytest.fixture
def coco_server(tmp_path):
    """The server, with the annotations zip at /annotations_trainval2017.zip and JPEGs under /val2017/."""
    root = tmp_path / "served"
    (root / "val2017").mkdir(parents=True)
    with serving(root) as server:
        data = tiny_coco(server.url)
        with zipfile.ZipFile(root / "annotations_trainval2017.zip", "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(MEMBER, json.dumps(data))
            zf.writestr("annotations/captions_val2017.json", "{}")
        for image in data["images"]:
            (root / "val2017" / image["file_name"]).write_bytes(jpeg(image["width"], image["height"], image["id"]))
        yield server


def fetch_zip(server, tmp_path) -> Path:
    """The fetch stage's first step: the pinned annotations zip, with download_url."""
    served = server.root / "annotations_trainval2017.zip"
    checksum = "sha256:" + file_checksum(served)
    return download_url(server.url + served.name, tmp_path / "raw" / served.name, checksum, timeout=5, progress=False)


def test_fetch_downloads_only_the_selected_images(coco_server, tmp_path):
    """Only the dog and cat images are downloaded; instances.json loads in pycocotools; a rerun asks for nothing."""
    archive = fetch_zip(coco_server, tmp_path)
    out = tmp_path / "coco"
    summary = fetch_coco_subset(archive, MEMBER, ["dog", "cat"], max_images=10, seed=0, out_dir=out,
                                workers=3, progress=False)
    assert summary == {"images": 3, "annotations": 4, "categories": ["dog", "cat"], "downloaded": 3}
    wanted = [f"/val2017/{i:012d}.jpg" for i in (2, 3, 6)]
    assert image_requests(coco_server) == wanted
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"{i:012d}.jpg" for i in (2, 3, 6)]
    assert (out / "images" / "000000000003.jpg").read_bytes() == (coco_server.root / wanted[1].lstrip("/")).read_bytes()

    coco = loads_in_pycocotools(out / "instances.json")
    assert sorted(coco.getImgIds()) == [2, 3, 6]
    assert sorted(coco.getAnnIds(imgIds=[6], iscrowd=False)) == [106, 108]
    assert coco.loadCats(coco.getCatIds(catNms=["cat"]))[0]["id"] == 2
    assert load_coco(out / "instances.json", out / "images")["info"]["seed"] == 0

    n_requests = len(coco_server.requests)
    again = fetch_coco_subset(archive, MEMBER, ["dog", "cat"], max_images=10, seed=0, out_dir=out, progress=False)
    assert again == summary | {"downloaded": 0}
    assert len(coco_server.requests) == n_requests


def test_fetch_resumes_an_interrupted_image(coco_server, tmp_path):
    """An image cut off mid-body keeps its .part; the next fetch asks only for the rest."""
    archive = fetch_zip(coco_server, tmp_path)
    path = "/val2017/000000000002.jpg"
    size = (coco_server.root / path.lstrip("/")).stat().st_size
    coco_server.cut[path] = size // 2
    out = tmp_path / "coco"
    with pytest.raises(UserError, match="resume"):
        fetch_coco_subset(archive, MEMBER, ["dog"], 10, 0, out, progress=False)
    assert (out / "images" / "000000000002.jpg.part").stat().st_size == size // 2
    assert not (out / "instances.json").exists()

    coco_server.cut.clear()
    summary = fetch_coco_subset(archive, MEMBER, ["dog"], 10, 0, out, progress=False)
    assert (path, f"bytes={size // 2}-") in coco_server.requests
    assert summary["downloaded"] == 1  # image 6 arrived whole the first time
    assert not list((out / "images").glob("*.part"))
    Image.open(out / "images" / "000000000002.jpg").load()


def test_fetch_from_a_mirror_refuses_an_image_of_the_wrong_size(coco_server, tmp_path):
    """image_base_url redirects every download; an image whose size differs from its record is refused."""
    archive = fetch_zip(coco_server, tmp_path)
    mirror = coco_server.root / "mirror"
    mirror.mkdir()
    for name in ("000000000001.jpg", "000000000003.jpg"):
        (mirror / name).write_bytes((coco_server.root / "val2017" / name).read_bytes())
    (mirror / "000000000003.jpg").write_bytes(jpeg(20, 20))  # the record says 48 x 24
    out = tmp_path / "coco"
    with pytest.raises(UserError, match=r"000000000003.jpg from .*mirror/000000000003.jpg is 20x20 pixels but "
                                        r"the annotations say 48x24"):
        fetch_coco_subset(archive, MEMBER, ["person"], 10, 0, out, image_base_url=coco_server.url + "mirror/",
                          workers=1, progress=False)
    assert not (out / "images" / "000000000003.jpg").exists()
    assert not (out / "images" / "000000000003.jpg.part").exists()
    assert not (out / "instances.json").exists()
    assert all(path.startswith("/mirror/") for path in image_requests(coco_server))


def test_fetch_offline_says_so_and_names_the_default(coco_server, tmp_path):
    archive = fetch_zip(coco_server, tmp_path)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UserError, match=r"offline.*-S 'detect/data=digits_on_textures'"):
        fetch_coco_subset(archive, MEMBER, ["cat"], 10, 0, tmp_path / "coco",
                          image_base_url=f"http://127.0.0.1:{port}/", progress=False)


def test_fetch_reports_a_wrong_member_or_a_bad_zip(coco_server, tmp_path):
    archive = fetch_zip(coco_server, tmp_path)
    with pytest.raises(UserError, match=r"no member 'annotations/instances_train2017.json'.*captions_val2017"):
        fetch_coco_subset(archive, "annotations/instances_train2017.json", ["cat"], 10, 0, tmp_path / "c", progress=False)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"not a zip at all")
    with pytest.raises(UserError, match="broken.zip is corrupt or not a zip"):
        fetch_coco_subset(broken, MEMBER, ["cat"], 10, 0, tmp_path / "c", progress=False)


# --------------------------------------------------------------------------- Pascal VOC

def voc_xml(file_name: str, width: int, height: int, objects: list[tuple[str, tuple[int, int, int, int]]]) -> str:
    """An Oxford-IIIT Pet style annotation (1-based inclusive corners)."""
    parts = [f"<object><name>{name}</name><pose>Frontal</pose><truncated>0</truncated><difficult>0</difficult>"
             f"<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
             for name, (x0, y0, x1, y1) in objects]
    return (f"<annotation><folder>OXIIIT</folder><filename>{file_name}</filename><source><database>OXFORD-IIIT Pet"
            f"</database></source><size><width>{width}</width><height>{height}</height><depth>3</depth></size>"
            f"<segmented>0</segmented>{''.join(parts)}</annotation>")


@pytest.fixture
def pets(tmp_path):
    """Two Oxford-Pet-like annotations and their images."""
    xml_dir, image_dir = tmp_path / "xmls", tmp_path / "images"
    xml_dir.mkdir()
    image_dir.mkdir()
    for stem, (w, h), objects in (("american_bulldog_12", (50, 40), [("dog", (1, 1, 50, 40))]),
                                  ("Abyssinian_100", (60, 30), [("cat", (11, 6, 30, 25)), ("cat", (40, 1, 61, 10))])):
        (image_dir / f"{stem}.jpg").write_bytes(jpeg(w, h))
        (xml_dir / f"{stem}.xml").write_text(voc_xml(f"{stem}.jpg", w, h, objects))
    return xml_dir, image_dir


def test_coco_from_voc_species_and_breeds(pets, tmp_path):
    xml_dir, image_dir = pets
    data = coco_from_voc(xml_dir, image_dir)
    assert data["categories"] == [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]
    assert [(img["id"], img["file_name"], img["width"], img["height"]) for img in data["images"]] == [
        (1, "Abyssinian_100.jpg", 60, 30), (2, "american_bulldog_12.jpg", 50, 40)]
    # 1-based inclusive corners: (11, 6)-(30, 25) covers pixels 10..29 and 5..24; xmax 61 is clipped to 60
    assert [(a["image_id"], a["category_id"], a["bbox"]) for a in data["annotations"]] == [
        (1, 1, [10.0, 5.0, 20.0, 20.0]), (1, 1, [39.0, 0.0, 21.0, 10.0]), (2, 2, [0.0, 0.0, 50.0, 40.0])]

    breeds = coco_from_voc(xml_dir, image_dir, class_of=oxford_pet_breed)
    assert [c["name"] for c in breeds["categories"]] == ["Abyssinian", "american_bulldog"]
    path = write_coco(tmp_path / "pets.json", breeds["images"], breeds["annotations"], breeds["categories"])
    assert loads_in_pycocotools(path).getAnnIds(catIds=[2]) == [3]
    assert load_coco(path, image_dir)["annotations"][2]["area"] == 2000.0


def test_coco_from_voc_malformed_xml_names_the_file(pets):
    xml_dir, image_dir = pets
    (xml_dir / "Bengal_7.xml").write_text("<annotation><filename>Bengal_7.jpg</filename><size>")
    with pytest.raises(UserError, match=r"Bengal_7.xml is not valid XML"):
        coco_from_voc(xml_dir, image_dir)
    (xml_dir / "Bengal_7.xml").write_text(voc_xml("Bengal_7.jpg", 10, 10, [("cat", (1, 1, 5, 5))])
                                          .replace("<xmax>5</xmax>", ""))
    (image_dir / "Bengal_7.jpg").write_bytes(jpeg(10, 10))
    with pytest.raises(UserError, match=r"Bengal_7.xml: <object> #1: <bndbox><xmax> '' is not a number"):
        coco_from_voc(xml_dir, image_dir)
    (xml_dir / "Bengal_7.xml").write_text(voc_xml("Bengal_8.jpg", 10, 10, [("cat", (1, 1, 5, 5))]))
    with pytest.raises(UserError, match=r"Bengal_7.xml: its image .*Bengal_8.jpg not found"):
        coco_from_voc(xml_dir, image_dir)
