"""Sentences where word order decides the sentiment: contrast pairs from templates, split by sentence shape.

The seed's Problem 2: a bag of words gives "The food was good, not bad at all" and "The food was bad, not good
at all" the same representation. Every *contrast pair* here is two sentences with exactly the same words in a
different order and opposite labels, so a bag of words scores both alike and can never get a pair right.

A template has slots {subject}, {be}, {first}, {second} and says whose sentiment the sentence takes: the
``first`` or the ``second`` adjective. Its *shape* (:func:`shape`) is the order of its slots with every run of
other words as one "w" (punctuation and the words after the last slot ignored): "rather than {first}, {subject}
{be} {second}." and "despite being {first}, {subject} {be} {second}." are both ``wAwSwB``, one sentence shape
in other words. Two templates of the same shape are near-copies (similarity: normalized Indel similarity of the
shapes, threshold 1.0), so each shape lives in one group:

* :data:`TRAINING_TEMPLATES`: the subject first, then both adjectives (shapes ``SwAwB`` and ``wSwAwB``):
  hundreds of constructions (negation, concession, preference, comparison, expectation, reported opinion, time),
  either half winning, filled with :func:`training_words` (hand-picked words and adjectives from the rated
  lexicon) into the order sentences added to training; the *seen* contrast set (``contrast_seen``) fills them
  with :data:`EVALUATION_WORDS` instead;
* :data:`VALIDATION_TEMPLATES` (``contrast_val``, chooses defaults): the subject directly before the first
  adjective (``SAwB``, ``wSAwB``: "{subject}: {first}, not {second}.", questions);
* :data:`TEST_TEMPLATES` (``contrast_unseen``, reports only): an adjective before the subject (``wAwSwB``,
  ``AwSwB``, ``AwBwS``, ``wAwBwS``: "despite being {first}, {subject} {be} {second}.", "{first}, not
  {second}: that {be} {subject}."), shapes never trained or chosen on.

Every contrast set has as many templates where the first adjective wins as where the second does, and as many
pairs from each template, so "the last adjective wins" and "the first adjective wins" score 0.5 of the pairs
(:func:`adjective_heuristic`), and a template's pairs sit together (intervals resample templates). The cue words
("not", "rather than", "despite being") are shared between the groups on purpose: what is new in the test is
where they stand. Slot words of training and evaluation are disjoint.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass

Pair = list[tuple[str, int]]  # [(sentence, label), (sentence, label)]; label 1 = positive
Template = tuple[str, str]  # (template, "first" | "second": whose sentiment the sentence takes)

SHAPE_THRESHOLD = 1.0  # same shape = near-copy (normalized Indel similarity of two shapes)


@dataclass(frozen=True)
class Words:
    """What fills the slots."""

    subjects: tuple[str, ...]
    positive: tuple[str, ...]
    negative: tuple[str, ...]
    verbs: tuple[str, ...] = ("was",)  # fills {be}: glue, like "the", so not a slot word


# ----------------------------------------------------------------------------- shapes

SLOT_SYMBOLS = {"{subject}": "S", "{first}": "A", "{second}": "B"}


def shape(template: str) -> str:
    """A template's sentence shape: its slots in order (S, A, B), each run of other words (and {be}) as "w";
    punctuation and the words after the last slot are ignored ("at all", "by the end" make no new shape).

    "despite being {first}, {subject} {be} {second}." -> "wAwSwB"
    """
    symbols: list[str] = []
    for token in re.findall(r"\{[a-z]+\}|[a-z']+", template.lower()):
        symbol = SLOT_SYMBOLS.get(token, "w")
        if symbol != "w" or not symbols or symbols[-1] != "w":
            symbols.append(symbol)
    while symbols and symbols[-1] == "w":
        symbols.pop()
    return "".join(symbols)


def shape_similarity(shapes: list[str], references: list[str]):
    """Normalized Indel similarity of every shape with every reference shape: (len(shapes), len(references))."""
    from rapidfuzz.distance import Indel
    from rapidfuzz.process import cdist

    return cdist(shapes, references, scorer=Indel.normalized_similarity)


# ----------------------------------------------------------------------------- templates

# Training: clauses of the subject, one whose adjective loses and one whose adjective wins, joined.
LOSING_CLAUSES = ("{s} {be} not {x}", "{s} {be} never {x}", "{s} {be} hardly {x}", "{s} {be} far from {x}",
                  "{s} {be} anything but {x}", "{s} {be} not at all {x}", "{s} could have been {x}",
                  "{s} should have been {x}", "{s} was supposed to be {x}", "{s} looked {x} on paper",
                  "{s} seemed {x} at first", "critics said {s} {be} {x}", "I expected {s} to be {x}",
                  "everyone said {s} {be} {x}", "the trailer made {s} look {x}", "we thought {s} would be {x}")
NEGATED = LOSING_CLAUSES[:6]  # these read well after the winning clause too ("..., and it was never bad")
WINNING_CLAUSES = ("{s} {be} {x}", "{s} {be} actually {x}", "{s} turned out {x}", "{s} {be} {x} in the end",
                   "{s} ended up {x}", "{s} {be} really {x}")
PLAIN_CLAUSES = ("{s} {be} {x}", "{s} felt {x}", "{s} {be} rather {x}", "{s} {be} mostly {x}")
# Joiners of two plain clauses, and whose adjective the sentence then takes.
LEADING_JOINERS = {"although": "second", "even though": "second", "while": "second", "though": "second"}
MIDDLE_JOINERS = {"although": "first", "even though": "first", "though": "first", "despite the fact that": "first",
                  "but": "second", "yet": "second", "however,": "second"}
SHORT_TRAINING_TEMPLATES: tuple[Template, ...] = (
    ("{subject} {be} {first}, not {second}.", "first"),
    ("{subject} {be} {first}, not {second} whatsoever.", "first"),
    ("{subject} {be} {first} and not {second} in the least.", "first"),
    ("{subject} {be} {first} and hardly ever {second}.", "first"),
    ("{subject} {be} {first}, never {second}.", "first"),
    ("{subject} {be} {first}, not remotely {second}.", "first"),
    ("{subject} {be} {first}, if anything, and certainly not {second}.", "first"),
    ("{subject} {be} {first} rather than {second}.", "first"),
    ("{subject} {be} {first} instead of {second}.", "first"),
    ("{subject} {be} more {first} than {second}.", "first"),
    ("{subject} {be} far more {first} than {second}.", "first"),
    ("{subject} {be} {first} despite being {second}.", "first"),
    ("{subject} {be} {first} in spite of seeming {second}.", "first"),
    ("{subject} {be} not {first}, but {second} throughout.", "second"),
    ("{subject} {be} not {first}; it {be} {second}.", "second"),
    ("{subject} {be} never {first}; it {be} always {second}.", "second"),
    ("{subject} {be} less {first} than {second}.", "second"),
    ("{subject} {be} far less {first} than {second}.", "second"),
    ("{subject} {be} not so much {first} as {second}.", "second"),
    ("{subject}, far from {first}, {be} {second}.", "second"),
    ("{subject} went from {first} to {second}.", "second"),
    ("{subject} started out {first} and ended up {second}.", "second"),
    ("{subject} {be} {first} at first, but {second} by the end.", "second"),
    ("I expected {subject} to be {first}, but it {be} {second}.", "second"),
    ("I feared {subject} would seem {first}; instead it {be} {second}.", "second"),
)


def _clause(frame: str, subject: str, slot: str) -> str:
    return frame.replace("{s}", subject).replace("{x}", slot)


def _training_templates() -> tuple[Template, ...]:
    """Every combination of the clauses and joiners above, and the short forms: each text once."""
    out: dict[str, str] = dict(SHORT_TRAINING_TEMPLATES)
    for losing, winning in itertools.product(LOSING_CLAUSES, WINNING_CLAUSES):
        for joiner in (", but ", "; ", ", yet ", "; instead, "):
            out[_clause(losing, "{subject}", "{first}") + joiner + _clause(winning, "it", "{second}") + "."] = "second"
        if losing in NEGATED:
            for joiner in ("; ", ", and ", " and "):
                out[_clause(winning, "{subject}", "{first}") + joiner + _clause(losing, "it", "{second}") + "."] = "first"
    for one, other in itertools.product(PLAIN_CLAUSES, PLAIN_CLAUSES):
        a, b = _clause(one, "{subject}", "{first}"), _clause(other, "it", "{second}")
        out.update({f"{joiner} {a}, {b}.": follows for joiner, follows in LEADING_JOINERS.items()})
        out.update({f"{a}, {joiner} {b}.": follows for joiner, follows in MIDDLE_JOINERS.items()})
    return tuple(sorted(out.items()))


TRAINING_TEMPLATES = _training_templates()

VALIDATION_TEMPLATES: tuple[Template, ...] = (
    ("{subject}: {first}, not {second}.", "first"),
    ("{subject}: {first} rather than {second}.", "first"),
    ("{subject}: {first}, despite seeming {second}.", "first"),
    ("{be} {subject} {first}? yes, and never {second}.", "first"),
    ("call {subject} {first}, not {second}.", "first"),
    ("{subject}: {first} at first, {second} by the end.", "second"),
    ("{subject}? {first} at first, then {second}.", "second"),
    ("{subject}: {first}? no, {second}.", "second"),
    ("{be} {subject} {first}? no, it {be} {second}.", "second"),
    ("call {subject} {first}? never; it {be} {second}.", "second"),
)

TEST_TEMPLATES: tuple[Template, ...] = (
    ("{first}, and {subject} {be} never {second}.", "first"),
    ("{first}? yes. {subject} {be} hardly {second}.", "first"),
    ("{first}, I say: {subject} {be} anything but {second}.", "first"),
    ("more {first} than ever, {subject} {be} hardly {second}.", "first"),
    ("{first}, not {second}: that {be} {subject}.", "first"),
    ("{first} rather than {second}: that {be} {subject}.", "first"),
    ("more {first} than {second}, that {be} {subject}.", "first"),
    ("{first} despite seeming {second}: that {be} {subject}.", "first"),
    ("despite being {first}, {subject} {be} {second}.", "second"),
    ("far from being {first}, {subject} {be} {second}.", "second"),
    ("rather than {first}, {subject} {be} {second}.", "second"),
    ("{first}? no. {subject} {be} {second}.", "second"),
    ("not {first} but {second}: that {be} {subject}.", "second"),
    ("less {first} than {second}: that {be} {subject}.", "second"),
    ("{first} at first, {second} by the end: that {be} {subject}.", "second"),
    ("never {first}, always {second}: that {be} {subject}.", "second"),
)

TEMPLATE_GROUPS = {"train": TRAINING_TEMPLATES, "val": VALIDATION_TEMPLATES, "test": TEST_TEMPLATES}


# ----------------------------------------------------------------------------- words

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

ADJECTIVE_ENDINGS = ("able", "ible", "ful", "ous", "ive", "ic", "less")


def lexicon_adjectives(lexicon: dict[str, float], known: set[str], min_rating: float) -> tuple[list[str], list[str]]:
    """Positive and negative adjectives drawn from the rated lexicon (``{word: valence / 4}``): words with an
    adjective's ending, rated at least ``min_rating`` either way, that occur in ``known`` (the training snippets)
    and share no 4-letter stem with an evaluation word ("greatest" would leak "great")."""
    evaluation_stems = {w[:4] for w in slot_words(EVALUATION_WORDS)}
    candidates = sorted(w for w in lexicon if re.fullmatch(r"[a-z]{4,}", w) and w.endswith(ADJECTIVE_ENDINGS)
                        and w in known and w[:4] not in evaluation_stems)
    return ([w for w in candidates if lexicon[w] >= min_rating], [w for w in candidates if lexicon[w] <= -min_rating])


def training_words(lexicon: dict[str, float] | None = None, known: set[str] = frozenset(),
                   min_rating: float = 0.375) -> Words:
    """:data:`TRAINING_WORDS`, with the lexicon's adjectives (:func:`lexicon_adjectives`) added when given one."""
    if not lexicon:
        return TRAINING_WORDS
    positive, negative = lexicon_adjectives(lexicon, known, min_rating)
    return Words(TRAINING_WORDS.subjects, tuple(dict.fromkeys([*TRAINING_WORDS.positive, *positive])),
                 tuple(dict.fromkeys([*TRAINING_WORDS.negative, *negative])), TRAINING_WORDS.verbs)


def slot_words(words: Words) -> set[str]:
    """Every word that fills a slot (subjects, adjectives): must not overlap between training and evaluation."""
    return {w for phrase in (*words.subjects, *words.positive, *words.negative) for w in phrase.split()} \
        - {"the", "this"}


# ----------------------------------------------------------------------------- pairs

# The contrast sets written by prepare: name -> templates (all filled with EVALUATION_WORDS).
CONTRAST_SETS = {"contrast_seen": TRAINING_TEMPLATES, "contrast_val": VALIDATION_TEMPLATES,
                 "contrast_unseen": TEST_TEMPLATES}


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


def balanced_templates(templates: tuple[Template, ...], count: int, seed: int) -> list[Template]:
    """As many templates where the first adjective wins as where the second does (all of the smaller side, at
    most ``count`` // 2 of each), chosen by ``seed``; alternating sides, in a stable order."""
    sides = [[t for t in templates if t[1] == side] for side in ("first", "second")]
    k = min(len(sides[0]), len(sides[1]), max(count // 2, 1))
    rng = random.Random(seed)
    chosen = [sorted(rng.sample(side, k)) for side in sides]
    return [t for both in zip(*chosen) for t in both]


def sample_pairs(templates: tuple[Template, ...], words: Words, count: int, seed: int) -> list[tuple[str, Pair]]:
    """At most ``count`` pairs: the same number from each of :func:`balanced_templates` (at least one), each template's
    together, its fillings chosen by ``seed``. Out: [(template, pair)]."""
    chosen = balanced_templates(templates, count, seed)
    per_template = max(count // len(chosen), 1)
    rng = random.Random(seed)
    fillings = list(itertools.product(words.subjects, words.positive, words.negative, words.verbs))
    out = []
    for template, follows in chosen:
        for subject, positive, negative, verb in rng.sample(fillings, min(per_template, len(fillings))):
            out.append((template, sentence_pair(template, follows, subject, positive, negative, verb)))
    return out


def contrast_pairs(name: str, count: int, seed: int) -> list[tuple[str, Pair]]:
    """The contrast set ``name`` (a key of :data:`CONTRAST_SETS`): [(template, pair)] in a stable order."""
    return sample_pairs(CONTRAST_SETS[name], EVALUATION_WORDS, count, seed)


def training_sentences(count: int, seed: int, words: Words = TRAINING_WORDS) -> list[tuple[str, int]]:
    """``count`` order-sensitive training sentences from every training template (whole pairs, so both orders are
    seen): half of the pairs from templates where the first adjective wins, half where the second does, spread
    evenly over each side's templates, the fillings chosen by ``seed``."""
    rng = random.Random(seed)
    fillings = list(itertools.product(words.subjects, words.positive, words.negative, words.verbs))
    pairs = []
    for side, share in (("first", (count + 3) // 4), ("second", (count + 1) // 2 - (count + 3) // 4)):
        templates = [t for t, follows in TRAINING_TEMPLATES if follows == side]
        for number, template in enumerate(templates):
            n = share // len(templates) + (number < share % len(templates))
            pairs += [sentence_pair(template, side, *filling) for filling in rng.sample(fillings, n)]
    rng.shuffle(pairs)
    return [sentence for pair in pairs for sentence in pair][:count]


def adjective_heuristic(sentence: str, which: str, words: Words = EVALUATION_WORDS) -> int:
    """"The last (or first) adjective wins": the label of the ``which`` ("last" or "first") of ``words``'
    adjectives in the sentence (1 positive, 0 negative, 0 when there is none)."""
    positive, negative = set(words.positive), set(words.negative)
    found = [int(w in positive) for w in re.findall(r"[a-z]+", sentence.lower()) if w in positive or w in negative]
    if not found:
        return 0
    return found[-1] if which == "last" else found[0]


# ----------------------------------------------------------------------------- the check

def nearest_shapes(group: str, groups: dict[str, tuple[Template, ...]] = TEMPLATE_GROUPS
                   ) -> list[tuple[str, str, float]]:
    """For each template of ``group``: (template, the training template of the most similar shape, similarity)."""
    from cnnrnn.near_copies import nearest

    return nearest({t: shape(t) for t, _ in groups[group]}, {t: shape(t) for t, _ in groups["train"]},
                   shape_similarity)


def shared_shapes(groups: dict[str, tuple[Template, ...]] = TEMPLATE_GROUPS) -> list[tuple[str, str]]:
    """(template, template) of different groups with the same shape: empty when the groups are apart."""
    owner: dict[str, tuple[str, str]] = {}
    out = []
    for group, templates in groups.items():
        for template, _ in templates:
            seen = owner.setdefault(shape(template), (group, template))
            if seen[0] != group:
                out.append((seen[1], template))
    return out
