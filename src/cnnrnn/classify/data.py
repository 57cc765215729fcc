"""Decode the raw classify files into tensors on disk, split by seed.

Output of ``prepare`` (``data/classify/prepared/``):
``{train,val,test}.pt`` — dicts with ``images`` (uint8, N x C x H x W) and ``labels`` (int64, N);
``manifest.csv`` — per-split class counts (pandas-readable); ``info.json`` — classes, shape, source.
The training loop never decodes an image file.
"""

from __future__ import annotations

import gzip
import json
import struct
import tarfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from cnnrnn.errors import UserError
from cnnrnn.mnist5k import read_mnist5k_csv
from cnnrnn.splits import stratified_split

SPLITS = ("train", "val", "test")



def read_idx(path: Path) -> np.ndarray:
    """An IDX file (``.gz`` or not; unsigned-byte data) as a numpy array of the shape its header gives."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise UserError(f"{path} is corrupt ({err}); delete data/classify/raw and fetch again") from err
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise UserError(f"{path} is not an unsigned-byte IDX file (magic {data[:4].hex()})")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise UserError(f"{path}: the IDX header is cut off; the file is truncated")
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise UserError(f"{path}: header says {dims} but holds {body.size} bytes; the file is truncated")
    return body.reshape(dims)


def read_idx_pair(raw: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(raw / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(raw / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    if len(images) != len(labels):
        raise UserError(f"{raw}: {prefix} has {len(images)} images but {len(labels)} labels")
    return images[:, None, :, :].copy(), labels


CIFAR_RECORD = 1 + 3 * 32 * 32


def read_cifar10_binary(archive: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The binary CIFAR-10 archive -> {"train": (images, labels), "test": ...}; images (N, 3, 32, 32).

    Reads the ``data_batch_*.bin`` / ``test_batch.bin`` members straight from the tar: fixed
    3,073-byte records (label byte, then 1,024 R, G and B bytes). Nothing is unpickled.
    """
    parts: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    try:
        with tarfile.open(archive) as tf:
            for member in sorted(tf.getmembers(), key=lambda m: m.name):
                name = Path(member.name).name
                split = "train" if name.startswith("data_batch_") else "test" if name == "test_batch.bin" else None
                if split is None or not member.isfile():
                    continue
                raw = tf.extractfile(member).read()
                if len(raw) % CIFAR_RECORD:
                    raise UserError(f"{archive}: {member.name} is {len(raw)} bytes, not a multiple of {CIFAR_RECORD}")
                parts[split].append(np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR_RECORD))
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise UserError(f"{archive} is corrupt or truncated ({err}); delete data/classify/raw and fetch again") from err
    out = {}
    for split, records in parts.items():
        if not records:
            raise UserError(f"{archive} has no {split} batches (data_batch_*.bin / test_batch.bin)")
        table = np.concatenate(records)
        out[split] = (table[:, 1:].reshape(-1, 3, 32, 32).copy(), table[:, 0].astype(np.int64))
    return out




def load_splits(data_cfg: dict[str, Any], raw: Path, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Decode the raw files named by ``data_cfg['format']`` and split them into train/val/test."""
    fmt = data_cfg["format"]
    for key in ("val_fraction",) + (("test_fraction",) if fmt == "mnist5k_csv" else ()):
        if not isinstance(data_cfg[key], (int, float)) or not 0 < data_cfg[key] < 1:
            raise UserError(f"classify.data.{key} must be a number between 0 and 1, not {data_cfg[key]!r}")
    if fmt == "mnist5k_csv":
        images, labels = read_mnist5k_csv(raw / next(iter(data_cfg["source"]["files"])))
        pool_idx, test_idx = stratified_split(labels, data_cfg["test_fraction"], seed)
        pools = {"train": (images[pool_idx], labels[pool_idx]), "test": (images[test_idx], labels[test_idx])}
    elif fmt == "idx":
        pools = {"train": read_idx_pair(raw, "train"), "test": read_idx_pair(raw, "t10k")}
    elif fmt == "cifar10_binary":
        pools = read_cifar10_binary(raw / next(iter(data_cfg["source"]["files"])))
    else:
        raise UserError(f"unknown classify data format {fmt!r}; use mnist5k_csv, idx or cifar10_binary")
    images, labels = pools["train"]
    # A different seed stream for val than for test, so changing val_fraction never moves the test set.
    train_idx, val_idx = stratified_split(labels, data_cfg["val_fraction"], seed + 1)
    return {"train": (images[train_idx], labels[train_idx]), "val": (images[val_idx], labels[val_idx]),
            "test": pools["test"]}


def prepare(params: dict[str, Any], raw: Path, out: Path) -> dict[str, Any]:
    """Write the prepared tensors, manifest and info for classify; return the info."""
    import pandas as pd
    import torch

    data_cfg = params["data"]
    splits = load_splits(data_cfg, raw, params["seed"])
    classes = list(data_cfg["classes"])
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for split in SPLITS:
        images, labels = splits[split]
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
            raise UserError(f"{split} labels run from {labels.min()} to {labels.max()}, but classify.data.classes has {len(classes)} names")
        torch.save({"images": torch.from_numpy(images), "labels": torch.from_numpy(labels)}, out / f"{split}.pt")
        counts = np.bincount(labels, minlength=len(classes))
        rows += [{"split": split, "class_index": i, "class_name": name, "count": int(counts[i])} for i, name in enumerate(classes)]
    pd.DataFrame(rows).to_csv(out / "manifest.csv", index=False)
    source = json.loads((raw / "source.json").read_text()) if (raw / "source.json").exists() else {}
    info = {"dataset": data_cfg["name"], "classes": classes, "image_shape": list(splits["train"][0].shape[1:]),
            "sizes": {s: int(len(splits[s][1])) for s in SPLITS}, "source": source}
    (out / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
