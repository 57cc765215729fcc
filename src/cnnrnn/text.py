"""Words and vocabularies for the text applications (sentiment, keyboard).

Tokenization is deliberately simple and the same everywhere: lower-cased words (with
inner apostrophes, so "don't" and "o'er" stay one word), numbers, and punctuation marks
as tokens of their own. A :class:`Vocabulary` is built in ``prepare`` from the training
split only and saved next to the model, so prediction maps text exactly as training did.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from cnnrnn.errors import UserError

PAD, UNK = "<pad>", "<unk>"
# "<unk>" already in a corpus (WikiText marks its rare words so) stays the unknown token.
WORD = re.compile(r"<unk>|[a-z0-9]+(?:'[a-z]+)*|[^\w\s]")


def tokenize_words(text: str, punctuation: str | None = None) -> list[str]:
    """Lower-cased word and punctuation tokens; ``punctuation`` (a string of marks) keeps only those marks."""
    tokens = WORD.findall(text.lower())
    if punctuation is not None:
        tokens = [t for t in tokens if t[0].isalnum() or t in punctuation or t == UNK]
    return tokens


def require_text(text, what: str = "input", example: str = "The food was good, not bad at all") -> str:
    """The text itself, or a :class:`UserError` for empty or non-text input."""
    if not isinstance(text, str):
        raise UserError(f"{what} must be text, not {type(text).__name__}")
    if not text.strip():
        raise UserError(f"{what} is empty; pass some text, e.g. \"{example}\"")
    return text


class Vocabulary:
    """Token <-> id. Id 0 is ``<pad>``, id 1 is ``<unk>`` (every token not seen often enough in training)."""

    def __init__(self, tokens: list[str]):
        if tokens[:2] != [PAD, UNK]:
            raise ValueError("a vocabulary starts with <pad>, <unk>")
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def build(cls, token_lists: Iterable[Iterable[str]], min_count: int = 1, max_size: int | None = None) -> Vocabulary:
        """The tokens seen at least ``min_count`` times, most frequent first (ties alphabetical), at most ``max_size``."""
        counts = Counter(t for tokens in token_lists for t in tokens)
        kept = sorted((t for t, c in counts.items() if c >= min_count and t not in (PAD, UNK)), key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[: max(0, max_size - 2)]
        return cls([PAD, UNK, *kept])

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        unk = self.index[UNK]
        return [self.index.get(t, unk) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[i] for i in ids]

    def save(self, path: Path) -> Path:
        from cnnrnn.atomic import write_text_atomically

        return write_text_atomically(Path(path), json.dumps(self.tokens, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        try:
            return cls(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as err:
            raise UserError(f"{path} is not a cnnrnn vocabulary ({err}); rerun the prepare stage") from err
