"""Tokens of the translation model: subwords (sentencepiece), words or characters, by ``translate.data.tokens``.

One tokenizer serves both languages (many UI words, names and numbers are shared, so the model can
copy them). It is trained in ``prepare`` on the *training* pairs only and travels inside ``model.pt``
as plain values (:meth:`Tokenizer.state`), so prediction splits text exactly as training did.

Ids 0-3 are the same for every kind: ``<pad>``, ``<unk>``, ``<s>`` (begin), ``</s>`` (end).
"""

from __future__ import annotations

import io
import re
from collections import Counter
from typing import Any

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
WORD = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")
NO_SPACE_BEFORE = re.compile(r" ([.,;:!?)\]}’'])")


class Tokenizer:
    """Text <-> ids. ``kind``: ``unigram`` or ``bpe`` (sentencepiece), ``word`` or ``char``."""

    def __init__(self, kind: str, proto: bytes | None = None, tokens: list[str] | None = None):
        self.kind = kind
        if kind in ("unigram", "bpe"):
            import sentencepiece

            self.processor = sentencepiece.SentencePieceProcessor(model_proto=proto)
            self.size = self.processor.get_piece_size()
        elif kind in ("word", "char"):
            self.tokens = list(tokens or SPECIALS)
            self.index = {t: i for i, t in enumerate(self.tokens)}
            self.size = len(self.tokens)
        else:
            raise ValueError(f"unknown token kind {kind!r}; use unigram, bpe, word or char")
        self._proto = proto

    @classmethod
    def train(cls, texts: list[str], cfg: dict[str, Any]) -> Tokenizer:
        """Learn the vocabulary of ``cfg`` (``kind``, ``vocabulary_size``, ``split_digits``, ``min_count``) from ``texts``."""
        kind = cfg["kind"]
        if kind in ("unigram", "bpe"):
            import sentencepiece

            model = io.BytesIO()
            sentencepiece.SentencePieceTrainer.train(
                sentence_iterator=iter(texts), model_writer=model, model_type=kind,
                vocab_size=cfg["vocabulary_size"], character_coverage=1.0, split_digits=bool(cfg.get("split_digits")),
                pad_id=PAD, unk_id=UNK, bos_id=BOS, eos_id=EOS, hard_vocab_limit=False,
                num_threads=1, minloglevel=2)  # one thread: the same pieces on every run
            return cls(kind, proto=model.getvalue())
        pieces = [p for t in texts for p in (split_words(t) if kind == "word" else list(t))]
        counts = Counter(pieces)
        kept = sorted((p for p, c in counts.items() if c >= cfg.get("min_count", 1)), key=lambda p: (-counts[p], p))
        return cls(kind, tokens=SPECIALS + kept)

    def state(self) -> dict[str, Any]:
        """Plain values (for ``model.pt``, read with ``weights_only``)."""
        return {"kind": self.kind, "proto": self._proto, "tokens": None if self._proto else self.tokens}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Tokenizer:
        return cls(state["kind"], proto=state.get("proto"), tokens=state.get("tokens"))

    def encode(self, text: str) -> list[int]:
        if self.kind in ("unigram", "bpe"):
            return self.processor.encode(text)
        pieces = split_words(text) if self.kind == "word" else list(text)
        return [self.index.get(p, UNK) for p in pieces]

    def pieces(self, ids: list[int]) -> list[str]:
        """The readable piece of each id (for attention tables)."""
        if self.kind in ("unigram", "bpe"):
            return [self.processor.id_to_piece(i) for i in ids]
        return [self.tokens[i] for i in ids]

    def decode(self, ids: list[int]) -> str:
        ids = [i for i in ids if i > EOS]
        if self.kind in ("unigram", "bpe"):
            return self.processor.decode(ids)
        if self.kind == "char":
            return "".join(self.tokens[i] for i in ids)
        return NO_SPACE_BEFORE.sub(r"\1", " ".join(self.tokens[i] for i in ids))


def split_words(text: str) -> list[str]:
    """Words (with inner apostrophes) and punctuation marks, case kept."""
    return WORD.findall(text)
