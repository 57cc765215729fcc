"""Encoded sentences of different lengths and how they are batched: padded ids plus true lengths.

Torch only (no Lightning), so prediction and evaluation stay light.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset


class EncodedSentences(Dataset):
    """One split written by ``prepare``: item i = (token ids (L_i,), label).

    ``order_sentences=False`` leaves out the generated order sentences (``train.pt``'s ``order_sentence``
    mask) and keeps only the real snippets.
    """

    def __init__(self, path: Path, order_sentences: bool = True):
        data = torch.load(path)
        self.labels = data["labels"]
        self.sentences = torch.split(data["ids"], data["lengths"].tolist())
        if not order_sentences and "order_sentence" in data:
            keep = (~data["order_sentence"]).nonzero().squeeze(1).tolist()
            self.labels = self.labels[keep]
            self.sentences = [self.sentences[i] for i in keep]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.sentences[i], self.labels[i]


def collate_sentences(items) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[(ids (L_i,), label)] -> ids (B, max L) padded with 0, lengths (B,), labels (B,)."""
    sentences, labels = zip(*items)
    lengths = torch.tensor([len(s) for s in sentences], dtype=torch.int64)
    return pad_sequence(list(sentences), batch_first=True, padding_value=0), lengths, torch.stack(list(labels))
