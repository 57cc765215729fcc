"""What a keyboard does with a language model: offer the 3 likeliest words, and how much typing that saves.

Keystroke savings: the user types a word letter by letter; after each prefix (the empty one
first) the keyboard shows the ``shown`` likeliest vocabulary words that start with it, and
the user taps the word as soon as it is shown (one keystroke). So a word costs
``min(letters typed + 1, len(word))`` keystrokes, or ``len(word)`` if it never shows up
(words outside the vocabulary never do). Savings = 1 - keystrokes / characters.
Punctuation is not typed through suggestions and is left out.
"""

from __future__ import annotations

import bisect

import torch

from cnnrnn.text import PAD, UNK


def keystrokes(word: str, ranked: list[str], shown: int = 3) -> int:
    """Keystrokes to enter ``word`` when the keyboard ranks candidates as ``ranked`` (likeliest first)."""
    for typed in range(len(word)):
        offered = [w for w in ranked if w.startswith(word[:typed])][:shown]
        if word in offered:
            return min(typed + 1, len(word))
    return len(word)


def is_word(token: str) -> bool:
    return token[:1].isalnum()


class SuggestionScorer:
    """Scores next-token distributions over a vocabulary, many positions at once.

    For each position it needs the probabilities of every token (C, V), the target id and the
    target as written. It adds up: top-1 / top-k hits (``<pad>`` and ``<unk>`` are never offered)
    and, for word targets, the keystrokes of :func:`keystrokes` and the characters typed.
    """

    def __init__(self, vocabulary: list[str], shown: int = 3, max_word_length: int = 30):
        self.vocabulary, self.shown, self.max_len = vocabulary, shown, max_word_length
        self.offerable = torch.tensor([t not in (PAD, UNK) for t in vocabulary])
        words = sorted((t, i) for i, t in enumerate(vocabulary) if is_word(t) and t not in (PAD, UNK))
        self.alphabetical = torch.tensor([i for _, i in words], dtype=torch.int64)  # (W,) vocabulary ids
        spelled = [t for t, _ in words]
        # For word id v and prefix length k: the range [lo, hi) of alphabetical positions sharing v's first k letters.
        self.lo = torch.zeros(len(vocabulary), max_word_length, dtype=torch.int64)
        self.hi = torch.zeros(len(vocabulary), max_word_length, dtype=torch.int64)
        for t, i in words:
            for k in range(min(len(t), max_word_length)):
                prefix = t[:k]
                self.lo[i, k] = bisect.bisect_left(spelled, prefix)
                self.hi[i, k] = bisect.bisect_left(spelled, prefix + "\U0010ffff")
        self.totals = {"positions": 0, "top1": 0, "topk": 0, "words": 0, "keystrokes": 0, "characters": 0}

    def add(self, probs: torch.Tensor, targets: torch.Tensor, written: list[str]) -> None:
        """probs (C, V), targets (C,) ids, written: the C target tokens as in the text."""
        probs = probs.masked_fill(~self.offerable, -1.0)
        top = probs.topk(self.shown, dim=1).indices  # (C, k)
        self.totals["positions"] += len(targets)
        self.totals["top1"] += int((top[:, 0] == targets).sum())
        self.totals["topk"] += int((top == targets[:, None]).any(1).sum())
        word_rows = [r for r, w in enumerate(written) if is_word(w)]
        if not word_rows:
            return
        rows = torch.tensor(word_rows)
        lengths = torch.tensor([len(written[r]) for r in word_rows])
        self.totals["words"] += len(word_rows)
        self.totals["characters"] += int(lengths.sum())
        ids = targets[rows]
        known = self.offerable[ids] & torch.tensor([self.vocabulary[int(i)] == written[r] for i, r in zip(ids, word_rows)])
        cost = lengths.clone()
        if known.any():
            rows, ids, lengths_known = rows[known], ids[known], lengths[known]
            p = probs[rows][:, self.alphabetical]  # (n, W), alphabetical order
            p_target = probs[rows, ids]  # (n,)
            better = torch.zeros(len(rows), p.shape[1] + 1, dtype=torch.int32)
            torch.cumsum(p > p_target[:, None], dim=1, dtype=torch.int32, out=better[:, 1:])
            ahead = better.gather(1, self.hi[ids]) - better.gather(1, self.lo[ids])  # (n, max_len) likelier rivals
            typed = torch.arange(self.max_len)
            shown_now = (ahead < self.shown) & (typed[None, :] < lengths_known[:, None])
            first = torch.where(shown_now, typed[None, :], torch.full_like(ahead, self.max_len)).amin(1)
            cost[known] = torch.minimum(first + 1, lengths_known)
        self.totals["keystrokes"] += int(cost.sum())

    def metrics(self, prefix: str = "") -> dict[str, float]:
        t = self.totals
        return {f"{prefix}top1_accuracy": round(t["top1"] / max(1, t["positions"]), 4),
                f"{prefix}top{self.shown}_accuracy": round(t["topk"] / max(1, t["positions"]), 4),
                f"{prefix}keystroke_savings": round(1 - t["keystrokes"] / max(1, t["characters"]), 4)}
