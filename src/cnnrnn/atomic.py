"""Writing files so that a reader never sees half of one: write a sibling temp file, then rename.

A failed or interrupted stage therefore leaves the previous output whole.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any


def write_bytes_atomically(path: Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomically(path: Path, text: str) -> Path:
    return write_bytes_atomically(path, text.encode())


def write_json_atomically(path: Path, data: Any) -> Path:
    return write_text_atomically(path, json.dumps(data, indent=2) + "\n")


def replace_dir(staging: Path, target: Path) -> None:
    """Put a finished ``staging`` directory in place of ``target``; the old one survives any failure before this."""
    if target.exists():
        old = target.with_name(target.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, target)
