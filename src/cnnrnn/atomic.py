"""Writing outputs so that a reader never sees half of them, even after a kill.

* One file: write a sibling temp file, then rename it over the old one.
* One folder (``fetch``'s ``raw/``, ``prepare``'s ``prepared/``): build it beside the old one, then
  swap the two with one ``renameat2(RENAME_EXCHANGE)`` call (Linux), so the path always names a
  whole folder, old or new. Where the call is missing, two renames and a repair at the next start.
* Several outputs in several places (``evaluate``'s metrics, plots and generated files):
  :class:`StagedOutputs` writes them all under a staging folder; committing writes a journal,
  renames each into place and removes the journal. A kill before the journal leaves the old
  outputs; a kill inside the commit (a few renames) is rolled forward by the next ``cnnrnn``
  command of that application, which finds the journal (:func:`recover`).

``CNNRNN_TEST_KILL_AT`` names a point where the process kills itself with SIGKILL (tests only):
``write:<file name>`` halfway through writing that file, or a stage's ``<stage>:<point>``
(:func:`kill_point`).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

KILL_AT = "CNNRNN_TEST_KILL_AT"
PAUSE_AT, PAUSE_FILE = "CNNRNN_TEST_PAUSE_AT", "CNNRNN_TEST_PAUSE_FILE"
JOURNALS = Path(".cache") / "commits"


def kill_point(name: str) -> None:
    """Kill this process with SIGKILL here if ``$CNNRNN_TEST_KILL_AT`` names this point (tests only).

    ``$CNNRNN_TEST_PAUSE_AT`` naming the point instead makes the process wait there: it creates
    ``$CNNRNN_TEST_PAUSE_FILE.waiting`` and goes on once ``$CNNRNN_TEST_PAUSE_FILE`` exists (at most 10 minutes).
    """
    if os.environ.get(KILL_AT) == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get(PAUSE_AT) == name:
        go = Path(os.environ[PAUSE_FILE])
        Path(f"{go}.waiting").touch()
        deadline = time.monotonic() + 600
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.05)


def write_bytes_atomically(path: Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if os.environ.get(KILL_AT) == f"write:{path.name}":
            tmp.write_bytes(data[: len(data) // 2])
            kill_point(f"write:{path.name}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomically(path: Path, text: str) -> Path:
    return write_bytes_atomically(path, text.encode())


def write_json_atomically(path: Path, data: Any) -> Path:
    return write_text_atomically(path, json.dumps(data, indent=2) + "\n")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), str(a))


def replace_dir(staging: Path, target: Path) -> None:
    """Put a finished ``staging`` folder in place of ``target``: the path names the old folder or the new one, never none
    (where the exchange call is missing, a kill between two renames leaves ``<target>.old``, which :func:`repair_dir` restores)."""
    if not target.exists():
        os.replace(staging, target)
    elif _exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)  # now holds the old folder
    else:
        old = target.with_name(target.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)


def repair_dir(target: Path) -> None:
    """Undo a kill between :func:`replace_dir`'s two fallback renames: bring ``<target>.old`` back if ``target`` is gone."""
    old = target.with_name(target.name + ".old")
    if old.is_dir() and not target.exists():
        os.replace(old, target)
    elif old.exists():
        shutil.rmtree(old, ignore_errors=True)


def remove_leftovers(folder: Path, prefix: str) -> list[Path]:
    """Delete the staging folders ``<folder>/<prefix>*`` a killed process left; return them (already gone)."""
    found = sorted(folder.glob(f"{prefix}*")) if folder.is_dir() else []
    for path in found:
        shutil.rmtree(path, ignore_errors=True)
    return found


class StagedOutputs:
    """Outputs of one stage, written under a staging folder and moved into place together.

    ``path(relative)`` is where the stage writes what will become ``<root>/<relative>``; ``folders``
    are outputs replaced as whole folders (a DVC ``outs`` folder), everything else file by file.
    Use as a context manager: the commit runs if the block finishes (unless :meth:`commit` ran already), the
    staging folder goes either way.
    """

    def __init__(self, root: Path, name: str, folders: tuple[str, ...] = ()):
        self.root, self.name, self.folders = Path(root), name, tuple(folders)
        recover(self.root, name)
        remove_leftovers(self.root / ".cache", f"stage-{name}-")  # a killed run's staging, never committed
        (self.root / ".cache").mkdir(exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=f"stage-{name}-", dir=self.root / ".cache"))
        self.committed = False

    def path(self, relative: str | Path) -> Path:
        return self.staging / relative

    def __enter__(self) -> StagedOutputs:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None and not self.committed:
                self.commit()
        finally:
            shutil.rmtree(self.staging, ignore_errors=True)

    def moves(self) -> list[str]:
        """What the commit moves: each staged folder of :attr:`folders`, and every other staged file."""
        moves = [f for f in self.folders if (self.staging / f).is_dir()]
        for file in sorted(p for p in self.staging.rglob("*") if p.is_file() or p.is_symlink()):
            relative = file.relative_to(self.staging).as_posix()
            if not any(relative.startswith(f + "/") for f in moves):
                moves.append(relative)
        return moves

    def commit(self) -> None:
        kill_point(f"{self.name}:staged")
        journal = self.root / JOURNALS / f"{self.name}.json"
        write_json_atomically(journal, {"staging": str(self.staging), "moves": self.moves(), "folders": list(self.folders)})
        kill_point(f"{self.name}:commit")
        _apply(self.root, journal)
        self.committed = True


def _apply(root: Path, journal: Path) -> None:
    record = json.loads(journal.read_text())
    staging = Path(record["staging"])
    for relative in record["moves"]:
        source, target = staging / relative, root / relative
        if not (source.exists() or source.is_symlink()):
            continue  # moved before a kill
        target.parent.mkdir(parents=True, exist_ok=True)
        if relative in record["folders"]:
            repair_dir(target)
            replace_dir(source, target)
        else:
            os.replace(source, target)
        if relative == record["moves"][len(record["moves"]) // 2]:
            kill_point(f"{journal.stem}:committing")
    journal.unlink()
    shutil.rmtree(staging, ignore_errors=True)


def recover_all(root: Path) -> list[str]:
    """Finish every commit a kill interrupted in the project at ``root``; return the stages that had one."""
    journals = sorted((Path(root) / JOURNALS).glob("*.json"))
    for journal in journals:
        _apply(Path(root), journal)
    return [j.stem for j in journals]


def recover(root: Path, name: str) -> bool:
    """Finish a commit of stage ``name`` that a kill interrupted (its journal is there); True if there was one."""
    journal = Path(root) / JOURNALS / f"{name}.json"
    if not journal.is_file():
        return False
    _apply(Path(root), journal)
    return True
