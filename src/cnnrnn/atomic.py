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

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from cnnrnn.errors import UserError

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
        self.root, self.name, self.folders = Path(root).resolve(), name, tuple(folders)
        if recover(self.root, name) is None:
            raise UserError(f"another process is moving the outputs of {name} into place right now; wait for it")
        remove_leftovers(self.root / ".cache", f"stage-{name}-")  # a killed run's staging, never committed
        (self.root / ".cache").mkdir(exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=f"stage-{name}-", dir=self.root / ".cache"))
        self.journal = self.root / JOURNALS / f"{name}.json"
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
            if not self.journal.exists():  # a commit cut short by an exception is finished by the next command
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
        moves = self.moves()
        # a staged folder is known by its inode: after an exchange its path holds the old folder until that is deleted
        folders = {f: (self.staging / f).stat().st_ino for f in self.folders if f in moves}
        with _journal_lock(self.journal, wait=True):
            write_json_atomically(self.journal, {"staging": self.staging.relative_to(self.root).as_posix(),
                                                 "moves": moves, "folders": folders})
            kill_point(f"{self.name}:commit")
            _apply(self.root, self.journal)
        self.committed = True


@contextlib.contextmanager
def _journal_lock(journal: Path, wait: bool):
    """Held while a commit runs, so that no other process replays the same journal; yields False if ``wait`` is
    False and another process holds it."""
    journal.parent.mkdir(parents=True, exist_ok=True)
    with journal.with_suffix(".lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _apply(root: Path, journal: Path) -> None:
    record = json.loads(journal.read_text())
    staging = root / record["staging"]
    for relative in record["moves"]:
        source, target = staging / relative, root / relative
        if not (source.exists() or source.is_symlink()):
            continue  # moved before a kill
        target.parent.mkdir(parents=True, exist_ok=True)
        if relative in record["folders"]:
            if source.stat().st_ino != record["folders"][relative]:  # the old folder an exchange left: done already
                shutil.rmtree(source, ignore_errors=True)
                continue
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
    done = []
    for journal in sorted((Path(root) / JOURNALS).glob("*.json")):
        if recover(root, journal.stem):
            done.append(journal.stem)
    return done


def recover(root: Path, name: str) -> bool | None:
    """Finish a commit of stage ``name`` that a kill interrupted (its journal is there): True if there was one,
    False if not, None if another process is committing it right now (left alone)."""
    journal = Path(root).resolve() / JOURNALS / f"{name}.json"
    if not journal.is_file():
        return False
    with _journal_lock(journal, wait=False) as locked:
        if not locked:
            return None
        if journal.is_file():  # not finished meanwhile by the process that held the lock
            _apply(Path(root).resolve(), journal)
    return True
