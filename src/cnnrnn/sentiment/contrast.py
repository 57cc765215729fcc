"""Sentences where word order decides the sentiment, generated from templates.

The seed's Problem 2: a bag of words gives "The food was good, not bad at all" and "The
food was bad, not good at all" the same representation. Every *contrast pair* here is two
sentences with exactly the same words in a different order and opposite labels, so a bag
of words scores both alike and can never get a pair right.

Two disjoint sets of templates and word lists:
* ``CONTRAST``: the evaluation set (never trained on);
* ``TRAINING``: order-sensitive sentences that may be added to the training data. They
  teach the constructions ("A, not B", "not A, but B", "expected A, got B") with other
  frames, other subjects and other adjectives, so the contrast set measures whether a
  model generalizes the construction, not whether it memorized the sentences.
A test checks both properties (permutations with opposite labels; disjointness).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class TemplateSet:
    """Templates with slots {subject}, {be}, {first}, {second}; ``follows`` says whose sentiment the sentence takes."""

    templates: tuple[tuple[str, str], ...]  # (template, "first" | "second")
    subjects: tuple[str, ...]
    positive: tuple[str, ...]
    negative: tuple[str, ...]
    verbs: tuple[str, ...] = ("was",)  # fills {be}: glue, like "the", so not a slot word


CONTRAST = TemplateSet(
    templates=(
        ("{subject} was {first}, not {second} at all.", "first"),
        ("{subject} was not {first}, but {second}.", "second"),
        ("I expected {subject} to be {first}, but it was {second}.", "second"),
        ("{subject} was {first} and never {second}.", "first"),
    ),
    subjects=("the food", "the film", "the story", "the acting", "the ending", "the music"),
    positive=("good", "great", "funny", "brilliant", "charming"),
    negative=("bad", "boring", "dull", "awful", "weak"),
)

TRAINING = TemplateSet(
    # The same four constructions as the contrast set ("A, not B", "not A, but B", "expected A, got B",
    # "A and never B") in other words, so that a model can learn them without seeing a contrast sentence.
    templates=(
        ("{subject} {be} {first}, not {second}.", "first"),
        ("{subject} {be} {first}, not {second} whatsoever.", "first"),
        ("{subject} {be} {first}, not {second} by any measure.", "first"),
        ("{subject} {be} {first} and not {second} in the least.", "first"),
        ("{subject} {be} not {first}, but {second} throughout.", "second"),
        ("{subject} {be} {first} rather than {second}.", "first"),
        ("{subject} {be} not {first}; it {be} {second}.", "second"),
        ("not {first}, but {second}: that {be} {subject}.", "second"),
        ("We thought {subject} would be {first}, but it turned out {second}.", "second"),
        ("I feared {subject} would seem {first}; instead it {be} {second}.", "second"),
        ("{subject} {be} {first} and hardly ever {second}.", "first"),
        ("{subject} {be} never {first}; it {be} always {second}.", "second"),
    ),
    subjects=("this movie", "the picture", "the script", "the cast", "the plot", "the dialogue", "the direction",
              "the soundtrack", "the performances", "this comedy", "the sequel", "the documentary"),
    positive=("wonderful", "enjoyable", "clever", "delightful", "superb", "entertaining", "fresh", "beautiful",
              "smart", "excellent", "lovely", "fantastic", "amazing", "fun", "pleasant", "nice", "moving", "witty"),
    negative=("terrible", "tedious", "dreadful", "lame", "stupid", "mediocre", "painful", "horrible", "poor",
              "ugly", "annoying", "messy", "bland", "predictable", "clumsy", "pointless", "sloppy", "stale"),
    verbs=("is", "was", "seems", "seemed", "feels", "felt"),
)


def sentence_pair(template: str, follows: str, subject: str, positive: str, negative: str,
                  verb: str = "was") -> list[tuple[str, int]]:
    """The two orders of one filling: [(sentence, label)], the positive reading first. Label 1 = positive."""
    pos_first = template.format(subject=subject, first=positive, second=negative, be=verb)
    neg_first = template.format(subject=subject, first=negative, second=positive, be=verb)
    if follows == "first":
        return [(pos_first, 1), (neg_first, 0)]
    return [(neg_first, 1), (pos_first, 0)]


def all_pairs(templates: TemplateSet) -> list[list[tuple[str, int]]]:
    return [sentence_pair(t, follows, s, p, n, v)
            for t, follows in templates.templates for s in templates.subjects
            for p in templates.positive for n in templates.negative for v in templates.verbs]


def contrast_pairs(count: int, seed: int) -> list[list[tuple[str, int]]]:
    """``count`` contrast pairs chosen by ``seed`` (all of them if ``count`` is larger), in a stable order."""
    pairs = all_pairs(CONTRAST)
    if count < len(pairs):
        pairs = [pairs[i] for i in sorted(random.Random(seed).sample(range(len(pairs)), count))]
    return pairs


def training_sentences(count: int, seed: int) -> list[tuple[str, int]]:
    """``count`` order-sensitive training sentences (whole pairs, so both orders are seen), chosen by ``seed``."""
    pairs = all_pairs(TRAINING)
    chosen = random.Random(seed).sample(range(len(pairs)), min(len(pairs), (count + 1) // 2))
    return [sentence for i in chosen for sentence in pairs[i]][:count]


def slot_words(templates: TemplateSet) -> set[str]:
    """Every word that fills a slot (subjects, adjectives): must not overlap between the two sets."""
    return {w for phrase in (*templates.subjects, *templates.positive, *templates.negative) for w in phrase.split()} - {"the"}
