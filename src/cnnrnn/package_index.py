"""Finding one pinned file of a Python package on the package index pip uses, without running pip.

``find_distribution("vaderSentiment", "3.3.2", sdist=True)`` reads the project's page on each
index (the PEP 691 JSON simple API, or the PEP 503 HTML page where JSON is not served) and
returns the one file of exactly that version: the source archive (``.tar.gz``, else ``.zip``)
with ``sdist``, else a wheel (a pure ``*-none-any`` one if there is one, else the best match for
this interpreter). Nothing is downloaded or installed here and nothing of the package runs: the
caller downloads :attr:`DistributionFile.url` and checks it against :attr:`DistributionFile.sha256`.

The indexes are pip's own: ``PIP_INDEX_URL`` and ``PIP_EXTRA_INDEX_URL`` where set, else the
``index-url`` / ``extra-index-url`` of pip's configuration (``pip config list``), else
https://pypi.org/simple/. ``find-links`` directories are not searched.
"""

from __future__ import annotations

import ast
import functools
import html.parser
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from packaging import tags
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from cnnrnn.errors import UserError

PYPI = "https://pypi.org/simple/"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"
# PEP 691 content negotiation: JSON if the index speaks it, else its HTML page.
ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
USER_AGENT = "cnnrnn data fetcher (PEP 691 client)"


@dataclass(frozen=True)
class DistributionFile:
    """One file of a project on an index: ``sha256`` is the hex digest its download must have."""

    filename: str
    url: str
    sha256: str | None
    index: str


def index_urls() -> list[str]:
    """The indexes pip would search, the main one first: environment, else pip's configuration, else PyPI.

    As with pip, a variable that is set (even to nothing) replaces the configured value.
    """
    config = _pip_config() if "PIP_INDEX_URL" not in os.environ or "PIP_EXTRA_INDEX_URL" not in os.environ else {}
    main = os.environ.get("PIP_INDEX_URL") or _configured(config, "index-url") or PYPI
    extra = os.environ["PIP_EXTRA_INDEX_URL"] if "PIP_EXTRA_INDEX_URL" in os.environ else _configured(config, "extra-index-url")
    return [main, *(extra or "").split()]


def _configured(config: dict[str, str], key: str) -> str | None:
    return config.get(f"download.{key}") or config.get(f"global.{key}")


@functools.cache
def _pip_config() -> dict[str, str]:
    """``pip config list`` as ``{"global.index-url": value, ...}``; empty if pip cannot say.

    (pip's own configuration command reads its files, in pip's order of precedence; it runs no downloaded code.)
    """
    try:
        done = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    config = {}
    for line in done.stdout.splitlines() if done.returncode == 0 else []:
        key, sep, value = line.partition("=")
        try:
            config[key.strip()] = ast.literal_eval(value.strip()) if sep else ""
        except (ValueError, SyntaxError):
            continue
    return config


def find_distribution(name: str, version: str, sdist: bool = False, sha256: str | None = None,
                      timeout: float = 60.0, offline_hint: str = "use a local directory source") -> DistributionFile:
    """The file of ``name==version`` to download (see the module docstring), with the SHA-256 it must have.

    ``sha256`` is the pin from ``conf/`` (hex, or ``"sha256:<hex>"``): where several files fit, the one
    with that digest is taken, and an index reporting another digest is refused. Without a pin, the
    digest the index reports is the one checked. Raises :class:`UserError` if no index has the file,
    the index cannot be reached, or the digests disagree.
    """
    pin = sha256.lower().removeprefix("sha256:") if sha256 else None
    try:
        wanted = Version(version)
    except InvalidVersion as err:
        raise UserError(f"pip source {name}=={version}: {version!r} is not a valid version") from err
    kind = "source archive (.tar.gz/.zip)" if sdist else "wheel"
    unreachable, listed = [], []
    for index in index_urls():
        try:
            files = project_files(index, name, timeout)
        except UserError as err:
            unreachable.append(str(err))
            continue
        if files is None:
            continue
        listed.extend(f.filename for f in files)
        chosen = _choose(files, name, wanted, sdist, pin)
        if chosen is None:
            continue
        if pin and chosen.sha256 and chosen.sha256 != pin:
            raise UserError(
                f"sha256 mismatch for {chosen.filename} ({name}=={version}) on {index}: distribution_sha256 in conf/ "
                f"pins {pin}, the index reports {chosen.sha256}. If you changed the version, check the new file and pin "
                f"its sha256; otherwise this index serves a different file than the pinned one: do not use it")
        expected = pin or chosen.sha256
        if not expected:
            raise UserError(f"{index} gives no sha256 for {chosen.filename}: pin it as distribution_sha256 of the "
                            f"{name}=={version} source in conf/ (the sha256 PyPI shows for that file)")
        return DistributionFile(chosen.filename, chosen.url, expected, index)
    if unreachable:  # the file may well be on the index that did not answer
        raise UserError(f"cannot reach the package index to find {name}=={version} ({'; '.join(unreachable)}): "
                        f"this machine looks offline or the index is down; {offline_hint}")
    seen = f" (files of {name} there: {', '.join(sorted(set(listed))[:12])})" if listed else ""
    raise UserError(f"no {kind} of {name}=={version}{' with sha256 ' + pin if pin else ''} on "
                    f"{', '.join(index_urls())}{seen}; check the version, sdist and distribution_sha256 in conf/")


def project_files(index: str, name: str, timeout: float = 60.0) -> list[DistributionFile] | None:
    """The files an index lists for project ``name`` (``sha256`` as the index reports it); None if it has no such project."""
    page = index.rstrip("/") + "/" + canonicalize_name(name) + "/"
    if page.startswith("file:"):  # a local index: a directory of <project>/index.html pages, as pip reads it
        path = Path(urllib.request.url2pathname(urllib.parse.urlparse(page).path)) / "index.html"
        if not path.is_file():
            return None
        return _parse_html(path.read_text(errors="replace"), path.as_uri(), index)
    request = urllib.request.Request(page, headers={"Accept": ACCEPT, "User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body, content_type, base = response.read(), response.headers.get_content_type(), response.geturl()
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return None
        raise UserError(f"{page}: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, OSError) as err:
        raise UserError(f"{page}: {getattr(err, 'reason', err)}") from err
    if content_type == JSON_TYPE:
        try:
            listing = json.loads(body)
            return [DistributionFile(f["filename"], urllib.parse.urljoin(base, f["url"]),
                                     ((f.get("hashes") or {}).get("sha256") or "").lower() or None, index) for f in listing["files"]]
        except (ValueError, KeyError, TypeError) as err:
            raise UserError(f"{page} is not a valid PEP 691 project page ({err})") from err
    return _parse_html(body.decode("utf-8", errors="replace"), base, index)


class _Anchors(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def _parse_html(text: str, base: str, index: str) -> list[DistributionFile]:
    """The files of a PEP 503 page: each anchor's URL, its file name (the URL's last part), its ``#sha256=``."""
    parser = _Anchors()
    parser.feed(text)
    files = []
    for href in parser.hrefs:
        url, _, fragment = urllib.parse.urljoin(base, href).partition("#")
        algorithm, _, digest = fragment.partition("=")
        filename = urllib.parse.unquote(urllib.parse.urlparse(url).path.rsplit("/", 1)[-1])
        files.append(DistributionFile(filename, url, digest.lower() if algorithm == "sha256" and digest else None, index))
    return files


def _choose(files: list[DistributionFile], name: str, version: Version, sdist: bool, pin: str | None) -> DistributionFile | None:
    """The best file of exactly ``name==version`` of the wanted kind; the pinned one where the index gives digests."""
    supported = {tag: rank for rank, tag in enumerate(tags.sys_tags())}
    ranked = []
    for f in files:
        if "/" in f.filename or "\\" in f.filename:
            continue
        try:
            if sdist:
                if not f.filename.endswith((".tar.gz", ".zip")):
                    continue
                project, found = parse_sdist_filename(f.filename)
                rank = (0 if f.filename.endswith(".tar.gz") else 1,)
            else:
                if not f.filename.endswith(".whl"):
                    continue
                project, found, _, wheel_tags = parse_wheel_filename(f.filename)
                if any(t.platform == "any" for t in wheel_tags):  # pure: the same bytes on every platform
                    rank = (0, min((supported.get(t, len(supported)) for t in wheel_tags)))
                elif wheel_tags & supported.keys():
                    rank = (1, min(supported[t] for t in wheel_tags if t in supported))
                elif pin and f.sha256 == pin:  # pinned by digest: its data files are read, its code never runs
                    rank = (2, 0)
                else:
                    continue
        except ValueError:  # not a standard file name: not a candidate
            continue
        if project == canonicalize_name(name) and found == version:
            ranked.append((f.sha256 != pin if pin else False, rank, f.filename, f))
    return min(ranked, key=lambda r: r[:3])[3] if ranked else None
