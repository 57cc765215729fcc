"""The fixed-window baseline: an interpolated Kneser-Ney n-gram model (numpy, no training loop).

P(w | h) = max(c(h w) - D, 0) / c(h) + D * T(h) / c(h) * P(w | h without its first word),
where c are raw counts at the highest order and continuation counts (how many different
words precede) below it, T(h) the number of different words seen after h, and the lowest
order is interpolated with a uniform distribution. Contexts never seen fall back to the
shorter context. This is the classic strong baseline an RNN language model must beat.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np


class KneserNeyModel:
    def __init__(self, order: int, discount: float, vocabulary_size: int):
        if order < 1 or not 0 < discount < 1:
            raise ValueError(f"n-gram order must be >= 1 and discount in (0, 1); got {order}, {discount}")
        self.order, self.discount, self.vocabulary_size = order, discount, vocabulary_size
        self.unigram = np.full(vocabulary_size, 1.0 / vocabulary_size)
        # context tuple -> (successor ids, discounted counts / c(h), back-off weight D * T(h) / c(h))
        self.tables: list[dict[tuple[int, ...], tuple[np.ndarray, np.ndarray, float]]] = []

    def fit(self, ids: list[int]) -> KneserNeyModel:
        n = self.order
        grams = [Counter(zip(*(ids[i:] for i in range(k)))) for k in range(1, n + 1)]  # grams[k-1]: k-grams
        # Counts used at each order: raw at the top, continuation counts (distinct left neighbours) below.
        used: list[Counter] = [Counter() for _ in range(n)]
        used[n - 1] = grams[n - 1]
        for k in range(n - 1, 0, -1):
            for gram in grams[k]:
                used[k - 1][gram[1:]] += 1
        unigram = np.zeros(self.vocabulary_size)
        for (w,), c in used[0].items():
            unigram[w] = c
        self.unigram = 0.999 * unigram / max(unigram.sum(), 1.0) + 0.001 / self.vocabulary_size
        self.tables = []
        for k in range(2, n + 1):
            successors: dict[tuple[int, ...], list[tuple[int, int]]] = defaultdict(list)
            for gram, c in used[k - 1].items():
                successors[gram[:-1]].append((gram[-1], c))
            table = {}
            for context, items in successors.items():
                words = np.array([w for w, _ in items], dtype=np.int64)
                counts = np.array([c for _, c in items], dtype=np.float64)
                total = counts.sum()
                table[context] = (words, np.maximum(counts - self.discount, 0) / total,
                                  self.discount * len(items) / total)
            self.tables.append(table)
        return self

    def distribution(self, context: list[int] | tuple[int, ...], out: np.ndarray | None = None) -> np.ndarray:
        """P(next token | the last order-1 tokens of ``context``) over the whole vocabulary, (V,) (into ``out`` if given)."""
        p = self.unigram.copy() if out is None else out
        if out is not None:
            p[:] = self.unigram
        context = tuple(context)
        for k, table in enumerate(self.tables, start=1):  # contexts of k tokens
            if len(context) < k:
                break
            entry = table.get(context[len(context) - k:])
            if entry is None:
                break  # a longer context containing an unseen shorter one is unseen too
            words, discounted, backoff = entry
            p *= backoff
            p[words] += discounted
        return p

    def distributions(self, stream: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Next-token distributions at ``positions`` of ``stream`` (predicting stream[t] from what precedes): (P, V)."""
        n = self.order - 1
        out = np.empty((len(positions), self.vocabulary_size))
        for row, t in zip(out, positions.tolist()):
            self.distribution(stream[max(0, t - n):t].tolist(), out=row)
        return out
