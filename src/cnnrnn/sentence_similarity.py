"""When two short English sentences are near-copies, so that one in test and the other in training would flatter
a model: the same words up to case, punctuation and inflection, or the same sentence shape with a word or two
changed ("Invoices may not be changed after they are transmitted." / "... created."; "Doesn't add up to much." /
"Doesn't really add up to much."). translate groups its English sources by it, sentiment its snippets.

Two measures, the larger counts (:func:`sentence_similarity`):

- words: the normalized Indel similarity (twice the longest common subsequence over the total length) of the
  :func:`folded_words` sequences: case, punctuation, plural and verb endings folded away;
- characters: the Dice overlap of the two folded strings' character 3-gram sets (hyphenation, spelling, compound
  words: "e-mail address" / "email address").

No torch, no Lightning, no MLflow.
"""

from __future__ import annotations

import re

import numpy as np

SUFFIXES = ("ing", "ies", "ed", "es", "s", "e")  # folded to one stem: invoice(s), change(s/d/ing), box(es)


def fold_word(word: str) -> str:
    """A crude stem: ``"Invoices"`` -> ``"invoic"``, ``"changed"`` -> ``"chang"``, ``"class"`` -> ``"class"``."""
    word = word.casefold()
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


def folded_words(text: str) -> list[str]:
    """The words of ``text`` (letters and digits; an apostrophe's or hyphen's parts joined), each :func:`fold_word`."""
    return [fold_word(w) for w in re.findall(r"\w+", re.sub(r"(?<=\w)['\u2019-](?=\w)", "", text))]


def trigrams(text: str) -> set[str]:
    """The character 3-grams of the folded words joined by one space, padded."""
    joined = f" {' '.join(folded_words(text))} "
    return {joined[i:i + 3] for i in range(len(joined) - 2)}


def word_similarity(sources: list[str], others: list[str]) -> np.ndarray:
    """(len(sources), len(others)): normalized Indel similarity of the folded word sequences."""
    from rapidfuzz import process
    from rapidfuzz.distance import Indel

    vocabulary: dict[str, int] = {}
    def ids(text: str) -> list[int]:
        return [vocabulary.setdefault(w, len(vocabulary)) for w in folded_words(text)]
    return process.cdist([ids(s) for s in sources], [ids(s) for s in others], scorer=Indel.normalized_similarity,
                         dtype=np.float32, workers=-1)


def trigram_similarity(sources: list[str], others: list[str]) -> np.ndarray:
    """(len(sources), len(others)): Dice overlap of the character 3-gram sets, 2|A & B| / (|A| + |B|)."""
    from scipy.sparse import csr_matrix

    columns: dict[str, int] = {}
    def matrix(texts: list[str]) -> csr_matrix:
        rows, cols = [], []
        for i, text in enumerate(texts):
            grams = [columns.setdefault(g, len(columns)) for g in trigrams(text)]
            rows += [i] * len(grams)
            cols += grams
        return rows, cols
    a_rows, a_cols = matrix(sources)
    b_rows, b_cols = matrix(others)
    width = len(columns)
    a = csr_matrix((np.ones(len(a_rows), np.float32), (a_rows, a_cols)), shape=(len(sources), width))
    b = csr_matrix((np.ones(len(b_rows), np.float32), (b_rows, b_cols)), shape=(len(others), width))
    shared = (a @ b.T).toarray()
    sizes = np.asarray(a.sum(axis=1)).ravel()[:, None] + np.asarray(b.sum(axis=1)).ravel()[None, :]
    return (2 * shared / np.maximum(sizes, 1)).astype(np.float32)


def sentence_similarity(sources: list[str], others: list[str]) -> np.ndarray:
    """(len(sources), len(others)) in 0-1: the larger of :func:`word_similarity` and :func:`trigram_similarity`."""
    return np.maximum(word_similarity(sources, others), trigram_similarity(sources, others))
