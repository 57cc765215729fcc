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

import numpy as np
import torch

from cnnrnn.text import PAD, UNK


def keystrokes(word: str, ranked: list[str], shown: int = 3) -> int:
    """Keystrokes to enter ``word`` when the keyboard ranks candidates as ``ranked`` (likeliest first)."""
    for typed in range(len(word)):
        offered = [w for w in ranked if w.startswith(word[:typed])][:shown]
        if word in offered:
            return min(typed + 1, len(word))
    return len(word)


PER_POSITION = ("token_top1", "token_topk", "keystrokes", "characters")


def is_word(token: str) -> bool:
    return token[:1].isalnum()


class SuggestionScorer:
    """Scores next-token distributions over a vocabulary, many positions at once.

    For each position it needs the probabilities of every token (C, V), the target id and the
    target as written. For word targets (what a keyboard suggests; punctuation is typed) it adds up
    top-1 / top-k hits among words, the keystrokes of :func:`keystrokes` and the characters typed;
    for every target, top-k hits among all tokens. ``<pad>`` and ``<unk>`` are never offered.
    """

    def __init__(self, vocabulary: list[str], shown: int = 3, max_word_length: int = 30):
        self.vocabulary, self.shown, self.max_len = vocabulary, shown, max_word_length
        self.offerable = torch.tensor([t not in (PAD, UNK) for t in vocabulary])  # any token: "next token" metrics
        self.words = torch.tensor([is_word(t) and t not in (PAD, UNK) for t in vocabulary])  # what a keyboard offers
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
        self.totals = {"positions": 0, "token_top1": 0, "token_topk": 0, "words": 0, "top1": 0, "topk": 0,
                       "keystrokes": 0, "characters": 0}
        self.spelled = False  # whether any position came with its written form (word metrics and keystrokes)
        # Per position, in the order added (for bootstrap intervals and paired tests): 1/0 hits, and
        # keystrokes and characters (0 and 0 for punctuation and for positions added without spelling).
        self.positions: dict[str, list[torch.Tensor]] = {k: [] for k in PER_POSITION}

    def add(self, probs: torch.Tensor, targets: torch.Tensor, written: list[str] | None = None) -> None:
        """probs (C, V), targets (C,) ids, written: the C target tokens as in the text (None: the next-token
        metrics only, e.g. on the validation works, whose spelling of unknown words is not kept)."""
        top = probs.masked_fill(~self.offerable, -1.0).topk(self.shown, dim=1).indices  # (C, k)
        top1, topk = top[:, 0] == targets, (top == targets[:, None]).any(1)
        cost, characters = torch.zeros(len(targets), dtype=torch.int64), torch.zeros(len(targets), dtype=torch.int64)
        self.totals["positions"] += len(targets)
        self.totals["token_top1"] += int(top1.sum())
        self.totals["token_topk"] += int(topk.sum())
        word_rows = [r for r, w in enumerate(written) if is_word(w)] if written is not None else []
        self.spelled = self.spelled or written is not None
        if word_rows:
            rows = torch.tensor(word_rows)
            cost[rows], characters[rows] = self._add_words(probs[rows], targets[rows], [written[r] for r in word_rows])
        for key, values in zip(PER_POSITION, (top1, topk, cost, characters)):
            self.positions[key].append(values.to(torch.int64))

    def _add_words(self, probs: torch.Tensor, targets: torch.Tensor, written: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The word targets: top-1/top-k among words, and keystrokes and characters of each, (n,) and (n,)."""
        probs = probs.masked_fill(~self.words, -1.0)  # (n, V): from here on, words only
        top = probs.topk(self.shown, dim=1).indices
        self.totals["top1"] += int((top[:, 0] == targets).sum())
        self.totals["topk"] += int((top == targets[:, None]).any(1).sum())
        lengths = torch.tensor([len(w) for w in written])
        self.totals["words"] += len(written)
        self.totals["characters"] += int(lengths.sum())
        ids = targets
        known = self.words[ids] & torch.tensor([self.vocabulary[int(i)] == w for i, w in zip(ids, written)])
        cost = lengths.clone()
        if known.any():
            ids, lengths_known = ids[known], lengths[known]
            p = probs[known][:, self.alphabetical]  # (n, W), alphabetical order
            p_target = probs[known].gather(1, ids[:, None]).squeeze(1)  # (n,)
            better = torch.zeros(len(ids), p.shape[1] + 1, dtype=torch.int32)
            torch.cumsum(p > p_target[:, None], dim=1, dtype=torch.int32, out=better[:, 1:])
            ahead = better.gather(1, self.hi[ids]) - better.gather(1, self.lo[ids])  # (n, max_len) likelier rivals
            typed = torch.arange(self.max_len)
            shown_now = (ahead < self.shown) & (typed[None, :] < lengths_known[:, None])
            first = torch.where(shown_now, typed[None, :], torch.full_like(ahead, self.max_len)).amin(1)
            # Shown after `first` letters: those letters and one tap; never shown: every letter.
            cost[known] = torch.where(shown_now.any(1), torch.minimum(first + 1, lengths_known), lengths_known)
        self.totals["keystrokes"] += int(cost.sum())
        return cost, lengths

    def per_position(self) -> dict[str, np.ndarray]:
        """Every position added so far: ``token_top1``, ``token_topk`` (1/0), ``keystrokes``, ``characters``, (N,) each."""
        return {k: torch.cat(v).numpy() if v else torch.zeros(0, dtype=torch.int64).numpy()
                for k, v in self.positions.items()}

    def metrics(self, prefix: str = "") -> dict[str, float]:
        """``top1/topk_accuracy``: the next token, words and punctuation marks alike (as language models are
        usually scored); ``top1/topk_word_accuracy``: word targets, only words offered (what a keyboard
        shows); ``keystroke_savings``: typing the test words with suggestions. The last three only where the
        positions came with their spelling."""
        t = self.totals
        k = self.shown
        digits = 5  # enough to tell 1 hit in 100k test positions: a value at a quality bar is not rounded onto it
        metrics = {f"{prefix}top1_accuracy": round(t["token_top1"] / max(1, t["positions"]), digits),
                   f"{prefix}top{k}_accuracy": round(t["token_topk"] / max(1, t["positions"]), digits)}
        if self.spelled:
            metrics.update({f"{prefix}top1_word_accuracy": round(t["top1"] / max(1, t["words"]), digits),
                            f"{prefix}top{k}_word_accuracy": round(t["topk"] / max(1, t["words"]), digits),
                            f"{prefix}keystroke_savings": round(1 - t["keystrokes"] / max(1, t["characters"]), digits)})
        return metrics
