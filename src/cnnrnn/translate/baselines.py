"""The two baselines every translation is measured against (same test pairs, same scoring).

- ``copy``: the source sentence unchanged. Many UI words are shared (names, "Email", "Cookies"), so
  this is a real floor.
- ``word_by_word``: the seed's literal "translating each word": every source word becomes the target
  word it is most strongly associated with in the training pairs (Dice coefficient of co-occurrence in
  the same pair), *in the source order*; punctuation stays. Its settings (``min_count``: co-occurrences a
  word pair needs; ``min_dice``: weaker associations are not trusted; ``unknown``: ``copy`` or ``drop`` a
  word with no translation) are chosen on the validation pairs by chrF, like the seq2seq model's.

Pure Python: no Lightning, no MLflow.
"""

from __future__ import annotations

from collections import Counter
from itertools import product
from typing import Any

from cnnrnn.translate.tokens import NO_SPACE_BEFORE, split_words


def detokenize(words: list[str]) -> str:
    return NO_SPACE_BEFORE.sub(r"\1", " ".join(words))


class WordByWord:
    """A lexical table learned from training pairs: source word (lower case) -> (target word, Dice)."""

    def __init__(self, sources: list[str], targets: list[str], min_count: int = 2):
        source_counts, target_counts, both = Counter(), Counter(), Counter()
        spelled: dict[str, Counter] = {}
        for source, target in zip(sources, targets):
            s_words = {w.lower() for w in split_words(source) if w[0].isalnum()}
            t_words = set()
            for w in split_words(target):
                if w[0].isalnum():
                    t_words.add(w.lower())
                    spelled.setdefault(w.lower(), Counter())[w] += 1
            source_counts.update(s_words)
            target_counts.update(t_words)
            both.update(product(s_words, t_words))
        best: dict[str, tuple[str, float]] = {}
        for (s, t), count in both.items():
            if count < min_count:
                continue
            dice = 2 * count / (source_counts[s] + target_counts[t])
            if dice > best.get(s, ("", -1.0))[1] or (dice == best[s][1] and t < best[s][0]):
                best[s] = (t, dice)
        # the most frequent spelling of each target word (e.g. "Django", "PDF")
        self.table = {s: (spelled[t].most_common(1)[0][0], dice) for s, (t, dice) in best.items()}

    def translate(self, text: str, min_dice: float, unknown: str) -> str:
        out = []
        for word in split_words(text):
            if not word[0].isalnum():
                out.append(word)
                continue
            target, dice = self.table.get(word.lower(), (None, 0.0))
            if target is not None and dice >= min_dice:
                out.append(target)
            elif unknown == "copy":
                out.append(word)
        if out and text[:1].isupper():
            out[0] = out[0][:1].upper() + out[0][1:]
        return detokenize(out)


def copy_source(texts: list[str]) -> list[str]:
    return list(texts)


def choose_word_by_word(train: tuple[list[str], list[str]], sources: list[str], references: list[str],
                        cfg: dict[str, Any], score) -> tuple[WordByWord, dict[str, Any], list[dict[str, Any]]]:
    """The table (learned from the ``train`` pairs) and the ``min_count`` x ``min_dice`` x ``unknown`` setting of
    ``cfg`` with the best ``score(hypotheses, references)`` on the validation pairs; and every tried setting."""
    tried, tables = [], {}
    for min_count in cfg["min_count"]:
        tables[min_count] = WordByWord(*train, min_count=min_count)
        for min_dice, unknown in product(cfg["min_dice"], cfg["unknown"]):
            hypotheses = [tables[min_count].translate(s, min_dice, unknown) for s in sources]
            tried.append({"min_count": min_count, "min_dice": min_dice, "unknown": unknown,
                          "val_chrf": round(score(hypotheses, references), 3)})
    best = max(tried, key=lambda r: (r["val_chrf"], -r["min_count"], -r["min_dice"]))
    return tables[best["min_count"]], best, tried
