"""No near-copies across splits: group items by an application's similarity, split whole groups, check the result.

Every application that splits its own data states a similarity between two items (compose: the melodies' interval
sequences; translate: the English sentences' folded words and character n-grams) and a threshold chosen from the
distribution of unrelated pairs. Items linked by a similarity at or above the threshold form one group (connected
components: a chain of near-copies stays together), whole groups go to one split, and prepare writes, for every
test (and validation) item, its most similar training item, then checks that none reaches the threshold.

Plain Python and numpy (the applications' similarities use rapidfuzz): no torch, no Lightning, no MLflow.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Callable, Hashable, Iterable, Sequence, TypeVar

import numpy as np

from cnnrnn.errors import UserError

Key = TypeVar("Key", bound=Hashable)


def connected_groups(keys: Sequence[Key], linked: Iterable[tuple[Key, Key]]) -> dict[Key, Key]:
    """``{key: its group's representative}``: the connected components of the ``linked`` pairs (union-find)."""
    parent = {k: k for k in keys}

    def root(k: Key) -> Key:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a, b in linked:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb, key=str)] = min(ra, rb, key=str)  # the representative does not depend on pair order
    return {k: root(k) for k in keys}


def split_groups(group_of: dict[Key, Key], sizes: dict[Key, int], fractions: dict[str, float],
                 seed: int, largest_held_out: float | None = None) -> dict[Key, str]:
    """``{key: split}``: whole groups in seeded order to each split of ``fractions`` (e.g. test, then val) until it
    holds its fraction of the total size; the rest to ``train``. With ``largest_held_out``, a group larger than
    that share of the smaller held-out split goes to train (one family of templated strings must not become half
    the test set)."""
    members: dict[Key, list[Key]] = {}
    for key in sorted(group_of, key=str):
        members.setdefault(group_of[key], []).append(key)
    order = sorted(members, key=str)
    random.Random(seed).shuffle(order)
    total = sum(sizes[k] for k in group_of)
    filled = {split: 0 for split in fractions}
    cap = largest_held_out * min(fractions.values()) * total if largest_held_out else float("inf")
    owner: dict[Key, str] = {}
    for group in order:
        size = sum(sizes[k] for k in members[group])
        split = next((s for s, f in fractions.items() if filled[s] < f * total and size <= cap), "train")
        for key in members[group]:
            owner[key] = split
            if split in filled:
                filled[split] += sizes[key]
    return owner


Matrix = Callable[[list, list], np.ndarray]
"""An application's similarity, all pairs at once: ``(items, references) -> (len(items), len(references))`` in 0-1."""


def linked_pairs(items: dict[str, object], similarity: Matrix, threshold: float) -> list[tuple[str, str]]:
    """Every pair of ``items`` whose similarity is ``threshold`` or more (each pair once)."""
    names = list(items)
    values = [items[n] for n in names]
    scores = np.asarray(similarity(values, values))
    first, second = np.nonzero(np.triu(scores >= threshold, k=1))
    return [(names[i], names[j]) for i, j in zip(first.tolist(), second.tolist())]


def nearest(items: dict[str, object], references: dict[str, object],
            similarity: Matrix) -> list[tuple[str, str, float]]:
    """For each of ``items``: ``(name, its most similar reference, their similarity)``."""
    if not items or not references:
        return [(name, "", 0.0) for name in items]
    ref_names = list(references)
    scores = np.asarray(similarity(list(items.values()), [references[n] for n in ref_names]))
    best = scores.argmax(axis=1)
    return [(name, ref_names[b], round(float(scores[i, b]), 4)) for i, (name, b) in enumerate(zip(items, best))]


def summary(rows: list[tuple[str, str, float]], threshold: float) -> dict[str, float]:
    """The distribution of each item's highest similarity to training: quantiles, and how many reach ``threshold``."""
    values = np.array([r[2] for r in rows], dtype=np.float64) if rows else np.zeros(1)
    q = np.quantile(values, [0.0, 0.5, 0.9, 1.0])
    return {"items": len(rows), "threshold": threshold, "min": round(float(q[0]), 4), "median": round(float(q[1]), 4),
            "p90": round(float(q[2]), 4), "max": round(float(q[3]), 4),
            "at_or_above_threshold": int((values >= threshold).sum()) if rows else 0}


def write_nearest(path: Path, rows_by_split: dict[str, list[tuple[str, str, float]]]) -> Path:
    """``nearest.csv``: split, item, its most similar training item, their similarity (the file prepare checks)."""
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["split", "item", "nearest_train_item", "similarity"])
        for split, rows in rows_by_split.items():
            writer.writerows([split, *row] for row in rows)
    return path


def read_nearest(path: Path, split: str = "test") -> dict[str, float]:
    """``{item: similarity to its nearest training item}`` of one split of a ``nearest.csv``."""
    with path.open(encoding="utf-8", newline="") as f:
        return {row["item"]: float(row["similarity"]) for row in csv.DictReader(f) if row["split"] == split}


def check_no_near_copies(rows: list[tuple[str, str, float]], threshold: float, what: str, measure: str) -> None:
    """Stop with the offending pairs when a held-out item has a training item at ``threshold`` or above."""
    bad = [r for r in rows if r[2] >= threshold]
    if bad:
        shown = "; ".join(f"{a!r} ~ {b!r} ({s:.2f})" for a, b, s in bad[:5])
        raise UserError(f"{len(bad)} {what} item(s) have a near-copy in training ({measure} >= {threshold}): {shown}"
                        f"{' ...' if len(bad) > 5 else ''}. The split must keep near-copies together; report this")


def far_items(similarity: dict[str, float]) -> set[str]:
    """The farther half of the items: those whose nearest training item is less similar than the median's."""
    if not similarity:
        return set()
    median = float(np.median(list(similarity.values())))
    far = {name for name, value in similarity.items() if value < median}
    return far or {name for name, value in similarity.items() if value <= median}
