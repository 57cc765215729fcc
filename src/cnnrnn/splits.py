"""Seeded splits of a labelled dataset (numpy only)."""

from __future__ import annotations

import numpy as np


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (rest, taken) with ``fraction`` of every class taken, chosen by ``seed``."""
    rng = np.random.default_rng(seed)
    taken = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        rng.shuffle(members)
        taken.append(members[: int(round(fraction * len(members)))])
    taken_idx = np.sort(np.concatenate(taken))
    rest = np.setdiff1d(np.arange(len(labels)), taken_idx)
    return rest, taken_idx
