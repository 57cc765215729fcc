"""The fixed-window baseline: interpolated Kneser-Ney n-gram models (numpy, no training loop), tuned on validation.

P_k(w | h) = max(c(h w) - D(c(h w)), 0) / c(h) + gamma(h) * P_(k-1)(w | h without its first word),
gamma(h) = (D1 N1(h) + D2 N2(h) + D3+ N3+(h)) / c(h),

where c are raw counts at the model's highest order and continuation counts (how many different
words precede the n-gram) below it, N_i(h) the number of different words seen i times after h
(N3+: 3 times or more), and the lowest order (no context) is interpolated with the uniform
distribution. A context never seen leaves the shorter context's distribution as it is.

Discounts: ``"modified"`` (Chen & Goodman 1998) estimates D1, D2, D3+ at each order from its
count-of-counts n1..n4: Y = n1 / (n1 + 2 n2), D1 = 1 - 2Y n2/n1, D2 = 2 - 3Y n3/n2, D3+ = 3 - 4Y n4/n3;
a number uses that one discount for every count and order.

Counting is vectorized: the n-grams of each order are rows of an int array, sorted and counted
with ``np.lexsort``; a context of up to 4 words is one int64 key (mixed radix, base = the vocabulary
size, the first word most significant, so keys sort as the contexts do). :class:`NgramCounts`
counts once up to the highest order of the grid; each :class:`KneserNeyModel` of the grid
(order x discount) reuses those counts and only computes its discounts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODIFIED = "modified"


def unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of ``rows`` (M, k), in lexicographic order, and how often each occurs: (U, k), (U,)."""
    if len(rows) == 0:
        return rows.reshape(0, rows.shape[1]), np.zeros(0, np.int64)
    order = np.lexsort(rows.T[::-1])  # lexsort's last key is the primary one: the first column
    ordered = rows[order]
    starts = np.flatnonzero(np.r_[True, np.any(ordered[1:] != ordered[:-1], axis=1)])
    return ordered[starts], np.diff(np.r_[starts, len(ordered)])


def context_keys(contexts: np.ndarray, vocabulary_size: int) -> np.ndarray:
    """One int64 per context row (U, j): sum of word_m * V^(j-1-m), so keys sort like the rows."""
    keys = np.zeros(len(contexts), np.int64)
    for column in contexts.T:
        keys = keys * vocabulary_size + column
    return keys


@dataclass
class Level:
    """The n-grams of one order k and the counts a model uses there (raw or continuation).

    ``contexts`` (C,) sorted int64 keys of the (k-1)-word contexts; ``starts`` (C+1,) where each context's
    n-grams begin in the gram arrays; ``gram_keys`` (U,) = context index * V + word, sorted; ``words``,
    ``counts`` (U,); per context: ``totals`` c(h) and ``n1``, ``n2``, ``n3plus`` (different words seen 1, 2, 3+ times).
    """

    contexts: np.ndarray
    starts: np.ndarray
    gram_keys: np.ndarray
    words: np.ndarray
    counts: np.ndarray
    totals: np.ndarray
    n1: np.ndarray
    n2: np.ndarray
    n3plus: np.ndarray

    @classmethod
    def from_grams(cls, grams: np.ndarray, counts: np.ndarray, vocabulary_size: int) -> Level:
        """``grams`` (U, k) distinct and lexicographically sorted, ``counts`` (U,)."""
        keys = context_keys(grams[:, :-1], vocabulary_size)
        first = np.r_[True, keys[1:] != keys[:-1]] if len(keys) else np.zeros(0, bool)
        begin = np.flatnonzero(first)
        context_index = np.cumsum(first) - 1
        words = grams[:, -1].astype(np.int64)

        def per_context(values: np.ndarray) -> np.ndarray:
            return np.add.reduceat(values, begin) if len(begin) else np.zeros(0, np.int64)

        return cls(contexts=keys[begin], starts=np.r_[begin, len(keys)], gram_keys=context_index * vocabulary_size + words,
                   words=words, counts=counts, totals=per_context(counts), n1=per_context((counts == 1).astype(np.int64)),
                   n2=per_context((counts == 2).astype(np.int64)), n3plus=per_context((counts >= 3).astype(np.int64)))

    def count_of_counts(self) -> tuple[int, int, int, int]:
        """How many n-grams occur exactly 1, 2, 3 and 4 times (at this level's counts)."""
        return tuple(int(np.count_nonzero(self.counts == i)) for i in (1, 2, 3, 4))


class NgramCounts:
    """Raw and continuation counts of every order up to ``max_order``, of one token stream (counted once).

    ``raw[k]``: the k-grams of the text with their counts (a model's highest order);
    ``continuation[k]``: each k-gram with the number of different words seen before it (the orders below).
    """

    def __init__(self, ids: np.ndarray | list[int], max_order: int, vocabulary_size: int):
        if max_order < 1:
            raise ValueError(f"n-gram order must be 1 or more, not {max_order}")
        if float(vocabulary_size) ** (max_order - 1) >= 2.0 ** 63:
            raise ValueError(f"a {max_order - 1}-word context over {vocabulary_size} words does not fit one int64 key; "
                             f"lower keyboard.baseline.orders")
        ids = np.asarray(ids, dtype=np.int64)
        self.max_order, self.vocabulary_size = max_order, vocabulary_size
        grams = {k: unique_rows(np.lib.stride_tricks.sliding_window_view(ids, k)) if len(ids) >= k
                 else (np.zeros((0, k), np.int64), np.zeros(0, np.int64)) for k in range(1, max_order + 1)}
        self.raw = {k: Level.from_grams(*grams[k], vocabulary_size) for k in grams}
        # Continuation count of a k-gram: how many distinct (k+1)-grams end with it.
        self.continuation = {k: Level.from_grams(*unique_rows(grams[k + 1][0][:, 1:]), vocabulary_size)
                             for k in range(1, max_order)}


def modified_discounts(n1: int, n2: int, n3: int, n4: int) -> tuple[float, float, float]:
    """D1, D2, D3+ from the count-of-counts (Chen & Goodman), each kept in [0.01, i]: a count is never
    discounted below zero, and every seen context leaves some mass for unseen words (tiny corpora can
    lack n-grams seen 2, 3 or 4 times, which makes the raw estimates leave that range)."""
    y = n1 / max(n1 + 2 * n2, 1)
    estimates = (1 - 2 * y * n2 / max(n1, 1), 2 - 3 * y * n3 / max(n2, 1), 3 - 4 * y * n4 / max(n3, 1))
    return tuple(float(np.clip(d, 0.01, i)) for i, d in enumerate(estimates, start=1))


class KneserNeyModel:
    """An interpolated Kneser-Ney model of one ``order`` over ``counts`` (from :class:`NgramCounts`).

    ``discount``: ``"modified"`` (three discounts per order from its count-of-counts) or one number in (0, 1).
    """

    def __init__(self, counts: NgramCounts, order: int, discount: float | str = MODIFIED):
        if not 1 <= order <= counts.max_order:
            raise ValueError(f"n-gram order {order} is not counted (1 to {counts.max_order})")
        if discount != MODIFIED and not (isinstance(discount, (int, float)) and 0 < discount < 1):
            raise ValueError(f"keyboard.baseline.discounts: {discount!r} is neither 'modified' nor a number in (0, 1)")
        self.order, self.discount, self.vocabulary_size = order, discount, counts.vocabulary_size
        self.levels = [counts.raw[k] if k == order else counts.continuation[k] for k in range(1, order + 1)]
        self.discounts = [modified_discounts(*level.count_of_counts()) if discount == MODIFIED
                          else (float(discount),) * 3 for level in self.levels]
        # Per level: the discounted probability of each n-gram and the back-off weight gamma of each context.
        self.discounted, self.gammas = [], []
        for level, (d1, d2, d3) in zip(self.levels, self.discounts):
            context_of = level.gram_keys // self.vocabulary_size
            d = np.where(level.counts == 1, d1, np.where(level.counts == 2, d2, d3))
            self.discounted.append(np.maximum(level.counts - d, 0) / level.totals[context_of])
            self.gammas.append((d1 * level.n1 + d2 * level.n2 + d3 * level.n3plus) / np.maximum(level.totals, 1))
        uniform = np.full(self.vocabulary_size, 1.0 / self.vocabulary_size)
        if len(self.levels[0].totals):  # the lowest order: one (empty) context, interpolated with uniform
            uniform *= self.gammas[0][0]
            np.add.at(uniform, self.levels[0].words, self.discounted[0])
        self.unigram = uniform

    @property
    def name(self) -> str:
        return f"order{self.order}_{self.discount}"

    def _contexts(self, stream: np.ndarray, positions: np.ndarray):
        """For each level k >= 2: (rows whose k-1 preceding tokens are a seen context, those contexts' indices)."""
        key = np.zeros(len(positions), np.int64)
        power = 1
        for k, level in enumerate(self.levels[1:], start=2):
            has = positions >= k - 1
            key = key + np.where(has, stream[np.maximum(positions - (k - 1), 0)], 0) * power  # one word further back
            power *= self.vocabulary_size
            index = np.minimum(np.searchsorted(level.contexts, key), max(len(level.contexts) - 1, 0))
            seen = has & (level.contexts[index] == key) if len(level.contexts) else np.zeros(len(key), bool)
            yield level, k - 1, np.flatnonzero(seen), index

    def probabilities(self, stream: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """P(stream[t] | the order-1 tokens before it) at each of ``positions`` (P,): the target's probability only."""
        stream, positions = np.asarray(stream, np.int64), np.asarray(positions, np.int64)
        targets = stream[positions]
        p = self.unigram[targets]
        for level, i, rows, index in self._contexts(stream, positions):
            context = index[rows]
            wanted = context * self.vocabulary_size + targets[rows]
            j = np.minimum(np.searchsorted(level.gram_keys, wanted), len(level.gram_keys) - 1)
            hit = level.gram_keys[j] == wanted
            p[rows] = self.gammas[i][context] * p[rows] + np.where(hit, self.discounted[i][j], 0.0)
        return p

    def perplexity(self, stream: np.ndarray, positions: np.ndarray) -> float:
        return float(np.exp(-np.log(self.probabilities(stream, positions)).mean()))

    def distributions(self, stream: np.ndarray, positions: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Next-token distributions at ``positions`` of ``stream`` (predicting stream[t] from what precedes): (P, V).

        ``out``: a (P', V) float64 buffer with P' >= P to fill (reused across chunks: a fresh 100 MB array per
        chunk costs more than the arithmetic); its first P rows are returned.
        """
        stream, positions = np.asarray(stream, np.int64), np.asarray(positions, np.int64)
        out = np.empty((len(positions), self.vocabulary_size)) if out is None else out[: len(positions)]
        out[:] = self.unigram
        flat = out.reshape(-1)
        for level, i, rows, index in self._contexts(stream, positions):
            context = index[rows]
            factor = np.ones(len(positions))
            factor[rows] = self.gammas[i][context]
            out *= factor[:, None]
            begin = level.starts[context]
            lengths = level.starts[context + 1] - begin
            # every n-gram of every row's context (distinct words within a context, so no index repeats)
            gram = np.arange(lengths.sum()) + np.repeat(begin - (np.cumsum(lengths) - lengths), lengths)
            flat[np.repeat(rows * self.vocabulary_size, lengths) + level.words[gram]] += self.discounted[i][gram]
        return out

    def distribution(self, context: list[int] | tuple[int, ...]) -> np.ndarray:
        """P(next token | the last order-1 tokens of ``context``) over the whole vocabulary, (V,)."""
        context = list(context)[-(self.order - 1):] if self.order > 1 else []
        return self.distributions(np.array([*context, 0]), np.array([len(context)]))[0]


def tune(train_ids: np.ndarray, val_ids: np.ndarray, val_positions: np.ndarray, vocabulary_size: int,
         orders: list[int], discounts: list[float | str]) -> tuple[KneserNeyModel, list[dict]]:
    """Fit every (order, discount) of the grid on ``train_ids`` and keep the lowest validation perplexity.

    Returns the chosen model and one row per candidate (order, discount, D1/D2/D3+ at its highest
    order, val perplexity, chosen).
    """
    if not orders or not discounts:
        raise ValueError("keyboard.baseline: orders and discounts need at least one value each")
    counts = NgramCounts(train_ids, max(orders), vocabulary_size)
    rows, models, perplexities = [], [], []
    for order in orders:
        for discount in discounts:
            model = KneserNeyModel(counts, order, discount)
            perplexities.append(model.perplexity(val_ids, val_positions))
            d1, d2, d3 = model.discounts[-1]
            rows.append({"order": order, "discount": discount, "d1": round(d1, 4), "d2": round(d2, 4),
                         "d3plus": round(d3, 4), "val_perplexity": round(perplexities[-1], 3)})
            models.append(model)
    best = int(np.argmin(perplexities))  # the first of equals: the smaller order, the grid's first discount
    for i, row in enumerate(rows):
        row["chosen"] = i == best
    return models[best], rows
