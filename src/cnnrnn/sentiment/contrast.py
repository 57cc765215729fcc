"""Sentences where word order decides the sentiment, generated from construction families.

The seed's Problem 2: a bag of words gives "The food was good, not bad at all" and "The
food was bad, not good at all" the same representation. Every *contrast pair* here is two
sentences with exactly the same words in a different order and opposite labels, so a bag
of words scores both alike and can never get a pair right.

A :class:`Family` is a *construction type* ("X, not Y"; concessive "although X, Y"; ...), with
a few surface templates. Three disjoint groups of families:

* :data:`TRAINING_FAMILIES`: order sentences added to the training data, filled with
  :data:`TRAINING_WORDS`; and the *seen* contrast set (``contrast_seen``): the same
  constructions filled with :data:`EVALUATION_WORDS` (subjects and adjectives never in a
  training template) — what the model learned;
* :data:`VALIDATION_FAMILIES`: the validation contrast set (``contrast_val``), which helps choose
  defaults;
* :data:`TEST_FAMILIES`: the *unseen* contrast set (``contrast_unseen``), reported only — how far
  the learned order sensitivity carries over to constructions never trained or chosen on.

Tests check that pairs are permutations with opposite labels, that slot words of training and
evaluation are disjoint, and that no template's normalized skeleton (:func:`skeleton`: slots and
optional words removed) is equal or near to one of another group.
"""

from __future__ import annotations

import difflib
import random
import re
from dataclasses import dataclass

Pair = list[tuple[str, int]]  # [(sentence, label), (sentence, label)]; label 1 = positive


@dataclass(frozen=True)
class Family:
    """One construction type. Templates have slots {subject}, {be}, {first}, {second}; ``follows`` ("first" or
    "second") says whose sentiment the sentence takes."""

    name: str
    templates: tuple[tuple[str, str], ...]  # (template, "first" | "second")


@dataclass(frozen=True)
class Words:
    """What fills the slots."""

    subjects: tuple[str, ...]
    positive: tuple[str, ...]
    negative: tuple[str, ...]
    verbs: tuple[str, ...] = ("was",)  # fills {be}: glue, like "the", so not a slot word


TRAINING_FAMILIES = (
    Family("affirm X, negate Y", (
        ("{subject} {be} {first}, not {second}.", "first"),
        ("{subject} {be} {first}, not {second} whatsoever.", "first"),
        ("{subject} {be} {first}, not {second} by any measure.", "first"),
        ("{subject} {be} {first} and not {second} in the least.", "first"),
        ("{subject} {be} {first} and hardly ever {second}.", "first"),
    )),
    Family("negate X, affirm Y", (
        ("{subject} {be} not {first}, but {second} throughout.", "second"),
        ("{subject} {be} not {first}; it {be} {second}.", "second"),
        ("not {first}, but {second}: that {be} {subject}.", "second"),
        ("{subject} {be} never {first}; it {be} always {second}.", "second"),
    )),
    Family("expectation: expected X, got Y", (
        ("I expected {subject} to be {first}, but it {be} {second}.", "second"),
        ("We thought {subject} would be {first}, but it turned out {second}.", "second"),
        ("I feared {subject} would seem {first}; instead it {be} {second}.", "second"),
    )),
    Family("preference: X rather than Y", (
        ("{subject} {be} {first} rather than {second}.", "first"),
        ("rather than {first}, {subject} {be} {second}.", "second"),
        ("{subject} {be} {first} instead of {second}.", "first"),
    )),
    Family("temporal: X at first, Y by the end", (
        ("{subject} {be} {first} at first, but {second} by the end.", "second"),
        ("{subject} started out {first} and ended up {second}.", "second"),
        ("{subject} went from {first} to {second}.", "second"),
    )),
)

VALIDATION_FAMILIES = (
    Family("counterfactual: could have been X, was Y", (
        ("{subject} could have been {first}, but it {be} {second}.", "second"),
        ("{subject} would have been {first} if only it had not been so {second}.", "second"),
    )),
    Family("reported opinion: others say X, I say Y", (
        ("critics called {subject} {first}, but I found it {second}.", "second"),
        ("everyone said {subject} {be} {first}; to me it {be} {second}.", "second"),
    )),
    Family("appearance: seemed X on the surface, was Y", (
        ("{subject} seemed {first} on the surface, but it {be} {second} deep down.", "second"),
        ("{subject} looked {first} from the outside; inside it {be} {second}.", "second"),
    )),
)

TEST_FAMILIES = (
    Family("concessive: although X, Y", (
        ("although {subject} {be} {first}, it {be} {second}.", "second"),
        ("despite being {first}, {subject} {be} {second}.", "second"),
        ("even though {subject} {be} {first}, it {be} {second}.", "second"),
    )),
    Family("comparative: less X than Y", (
        ("{subject} {be} less {first} than {second}.", "second"),
        ("{subject} {be} more {first} than {second}.", "first"),
        ("{subject} {be} not so much {first} as {second}.", "second"),
    )),
    Family("lexical negation: far from X, Y", (
        ("far from being {first}, {subject} {be} {second}.", "second"),
        ("{subject}, far from {first}, {be} {second}.", "second"),
    )),
    Family("question and answer: X? no, Y", (
        ("{first}? no. {subject} {be} {second}.", "second"),
        ("{be} {subject} {first}? no, it {be} {second}.", "second"),
    )),
)

FAMILY_GROUPS = {"train": TRAINING_FAMILIES, "val": VALIDATION_FAMILIES, "test": TEST_FAMILIES}

TRAINING_WORDS = Words(
    subjects=("this movie", "the picture", "the script", "the cast", "the plot", "the dialogue", "the direction",
              "the soundtrack", "the performances", "this comedy", "the sequel", "the documentary"),
    positive=("wonderful", "enjoyable", "clever", "delightful", "superb", "entertaining", "fresh", "beautiful",
              "smart", "excellent", "lovely", "fantastic", "amazing", "fun", "pleasant", "nice", "moving", "witty"),
    negative=("terrible", "tedious", "dreadful", "lame", "stupid", "mediocre", "painful", "horrible", "poor",
              "ugly", "annoying", "messy", "bland", "predictable", "clumsy", "pointless", "sloppy", "stale"),
    verbs=("is", "was", "seems", "seemed", "feels", "felt"),
)

# Every contrast set (seen, val, unseen) uses these: a contrast sentence never shares a subject or adjective
# with a training sentence, so "seen" means the construction, not the sentence.
EVALUATION_WORDS = Words(
    subjects=("the food", "the film", "the story", "the acting", "the ending", "the music"),
    positive=("good", "great", "funny", "brilliant", "charming"),
    negative=("bad", "boring", "dull", "awful", "weak"),
)

# The contrast sets written by prepare: name -> (families, words).
CONTRAST_SETS = {
    "contrast_seen": (TRAINING_FAMILIES, EVALUATION_WORDS),
    "contrast_val": (VALIDATION_FAMILIES, EVALUATION_WORDS),
    "contrast_unseen": (TEST_FAMILIES, EVALUATION_WORDS),
}


def sentence_pair(template: str, follows: str, subject: str, positive: str, negative: str,
                  verb: str = "was") -> Pair:
    """The two orders of one filling: [(sentence, label)], the positive reading first. Label 1 = positive."""
    def fill(first: str, second: str) -> str:
        text = template.format(subject=subject, first=first, second=second, be=verb)
        return text[0].upper() + text[1:]

    pos_first, neg_first = fill(positive, negative), fill(negative, positive)
    if follows == "first":
        return [(pos_first, 1), (neg_first, 0)]
    return [(neg_first, 1), (pos_first, 0)]


def family_pairs(family: Family, words: Words) -> list[Pair]:
    """Every filling of every template of ``family``."""
    return [sentence_pair(t, follows, s, p, n, v) for t, follows in family.templates for s in words.subjects
            for p in words.positive for n in words.negative for v in words.verbs]


def sample_pairs(families: tuple[Family, ...], words: Words, count: int, seed: int) -> list[tuple[str, Pair]]:
    """``count`` pairs, as equal a share from each family as it has, chosen by ``seed``: [(family name, pair)]."""
    rng = random.Random(seed)
    out = []
    for number, family in enumerate(families):
        pairs = family_pairs(family, words)
        share = count // len(families) + (number < count % len(families))
        out += [(family.name, pairs[i]) for i in sorted(rng.sample(range(len(pairs)), min(share, len(pairs))))]
    return out


def contrast_pairs(name: str, count: int, seed: int) -> list[tuple[str, Pair]]:
    """The contrast set ``name`` (a key of :data:`CONTRAST_SETS`): [(family name, pair)] in a stable order."""
    families, words = CONTRAST_SETS[name]
    return sample_pairs(families, words, count, seed)


def training_sentences(count: int, seed: int) -> list[tuple[str, int]]:
    """``count`` order-sensitive training sentences (whole pairs, so both orders are seen), chosen by ``seed``."""
    pairs = sample_pairs(TRAINING_FAMILIES, TRAINING_WORDS, (count + 1) // 2, seed)
    random.Random(seed).shuffle(pairs)
    return [sentence for _, pair in pairs for sentence in pair][:count]


def slot_words(words: Words) -> set[str]:
    """Every word that fills a slot (subjects, adjectives): must not overlap between training and evaluation."""
    return {w for phrase in (*words.subjects, *words.positive, *words.negative) for w in phrase.split()} \
        - {"the", "this"}


# ----------------------------------------------------------------------------- skeletons

# Words that do not make a construction: removed before templates are compared, so that two templates
# differing only in them ("X, not Y" / "X, not Y whatsoever" / "X, not Y at all") count as the same.
OPTIONAL_PHRASES = ("at all", "whatsoever", "by any measure", "in the least", "throughout", "really", "actually",
                    "truly", "quite", "very", "overall", "always", "to boot", "in places")
GLUE_WORDS = frozenset("is was were be been being it its it's the a an this that i we you they to me".split())


def skeleton(template: str) -> tuple[str, ...]:
    """A template's construction words: lower case, slots, punctuation, optional phrases and glue words removed.

    "{subject} was {first}, not {second} at all." -> ("not",)
    """
    text = re.sub(r"\{[a-z]+\}", " ", template.lower())
    text = " ".join(re.findall(r"[a-z']+", text))
    for phrase in OPTIONAL_PHRASES:
        text = re.sub(rf"\b{phrase}\b", " ", text)
    return tuple(w for w in text.split() if w not in GLUE_WORDS)


def near_duplicates(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether two skeletons are the same construction in other words: equal, one inside the other with at most
    one word more, or 75% alike as word sequences."""
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    it = iter(long)
    if len(long) - len(short) <= 1 and all(w in it for w in short):  # `short` is a subsequence of `long`
        return True
    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.75


def overlapping_templates(groups: dict[str, tuple[Family, ...]] = FAMILY_GROUPS) -> list[tuple[str, str]]:
    """Pairs of templates from different groups whose skeletons are near-duplicates (empty when the groups are disjoint)."""
    templates = [(group, t) for group, families in groups.items() for f in families for t, _ in f.templates]
    return [(t, u) for i, (g, t) in enumerate(templates) for h, u in templates[i + 1:]
            if g != h and near_duplicates(skeleton(t), skeleton(u))]
