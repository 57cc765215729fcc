"""Does a translation belong to its source? A filter for catalog entries whose English changed after they were
translated ("The event cannot end before it starts." -> "Le sous-événement ne peut pas être nul ...").

The score of a pair is how much of each side the other side explains, by a word-association table learned from
all the pairs of the data set (Dice coefficient of two words occurring in the same pair; no translation model
and no reference is used, so the filter sees nothing a test score depends on):

- for each source word with an association (Dice ``>= min_dice``, seen together ``>= min_count`` times), is its
  best target word in the translation (or the word itself, up to accents and endings: names, "PDF", cognates
  such as "product" / "produit", Simard et al. 1992)? and the same from the French side;
- ``alignment_score`` is the mean of the two shares; a side with no word to judge counts as explained.

A pair is dropped when its source has ``min_source_words`` words or more and its score is below ``min_score``
(shorter strings give the score too little to go on), or when the two sides hold different numbers. Measured on a
hand-checked sample (``benchmarks/checks/translate_alignment_sample.csv``; README, translate): it is a coarse
filter, most of what it drops is a loose but faithful translation.
No torch, no Lightning, no MLflow.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from itertools import product
from typing import Any

NUMBER = re.compile(r"\d+")


STEM = 5  # letters a word is cut to: "products" / "produits" -> "produ", "résultats" -> "resul"


def words(text: str) -> set[str]:
    """Words of three letters or more (short function words associate with everything), lower case, accents
    removed and cut to their first ``STEM`` letters: a crude stem for both languages, under which cognates
    ("product" / "produit", "image" / "image") are the same word."""
    plain = "".join(c for c in unicodedata.normalize("NFD", text.casefold()) if not unicodedata.combining(c))
    return {w[:STEM] for w in re.findall(r"\w+", plain) if len(w) >= 3 and not w.isdigit()}


def associations(pairs: list[tuple[str, str]], min_count: int) -> tuple[dict[str, tuple[str, float]],
                                                                       dict[str, tuple[str, float]]]:
    """Each word's most associated word on the other side, with its Dice coefficient: (English -> French,
    French -> English)."""
    source_counts, target_counts, both = Counter(), Counter(), Counter()
    for source, target in pairs:
        s, t = words(source), words(target)
        source_counts.update(s)
        target_counts.update(t)
        both.update(product(s, t))
    forward: dict[str, tuple[str, float]] = {}
    backward: dict[str, tuple[str, float]] = {}
    for (s, t), count in sorted(both.items()):
        if count < min_count:
            continue
        dice = 2 * count / (source_counts[s] + target_counts[t])
        if dice > forward.get(s, ("", 0.0))[1]:
            forward[s] = (t, dice)
        if dice > backward.get(t, ("", 0.0))[1]:
            backward[t] = (s, dice)
    return forward, backward


def explained(side: set[str], other: set[str], table: dict[str, tuple[str, float]], min_dice: float) -> float:
    """The share of ``side``'s judged words whose best association (or the word itself) is in ``other``."""
    judged = [w for w in side if w in other or table.get(w, ("", 0.0))[1] >= min_dice]
    if not judged:
        return 1.0
    return sum(1 for w in judged if w in other or table[w][0] in other) / len(judged)


def alignment_scores(pairs: list[tuple[str, str]], cfg: dict[str, Any]) -> list[float]:
    """Each pair's ``alignment_score`` (0-1; see the module's docstring)."""
    forward, backward = associations(pairs, cfg["min_count"])
    scores = []
    for source, target in pairs:
        s, t = words(source), words(target)
        scores.append(round(0.5 * (explained(s, t, forward, cfg["min_dice"])
                                   + explained(t, s, backward, cfg["min_dice"])), 4))
    return scores


def same_numbers(source: str, target: str) -> bool:
    return sorted(NUMBER.findall(source)) == sorted(NUMBER.findall(target))


def misaligned(pairs: list[tuple[str, str]], cfg: dict[str, Any]) -> list[bool]:
    """True for each pair the filter drops (see the module's docstring)."""
    return [(score < cfg["min_score"] and len(source.split()) >= cfg["min_source_words"])
            or not same_numbers(source, target)
            for (source, target), score in zip(pairs, alignment_scores(pairs, cfg))]
