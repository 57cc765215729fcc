"""The three sentence classifiers the seed compares, as plain ``nn.Module``s.

All take ``ids`` (B, T) — token ids padded with 0 — and ``lengths`` (B,), and return one
logit per sentence (B,): positive if > 0.

* :class:`BagOfWords` — logistic regression on which words occur (the seed's option 2: order is lost);
* :class:`LastWindow` — a dense network on only the last ``window`` tokens (option 1: a fixed window);
* :class:`RecurrentClassifier` — an LSTM or GRU, uni- or bidirectional, over the whole sentence,
  packed so that every sentence is read to its own end and padding is never seen.

With ``lexicon_feature`` the window and RNN models read, beside each word's embedding, the
word's human-rated valence (a ``lexicon`` buffer of one number per vocabulary entry, saved
with the weights): 7k training snippets are too few to learn every rare word's polarity.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


class BagOfWords(nn.Module):
    def __init__(self, vocabulary_size: int, binary: bool = True):
        super().__init__()
        self.vocabulary_size = vocabulary_size
        self.binary = binary
        self.linear = nn.Linear(vocabulary_size, 1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        counts = torch.zeros(len(ids), self.vocabulary_size, device=ids.device)  # (B, V)
        counts.scatter_add_(1, ids, torch.ones_like(ids, dtype=counts.dtype))
        counts[:, 0] = 0  # padding
        if self.binary:
            counts = counts.clamp_max(1)
        return self.linear(counts).squeeze(-1)


class WordFeatures(nn.Module):
    """ids (B, T) -> (B, T, E [+ 1]): a learned embedding, and the word's lexicon valence if ``lexicon_feature``."""

    def __init__(self, vocabulary_size: int, embedding_dim: int, lexicon_feature: bool):
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, embedding_dim, padding_idx=0)
        self.lexicon_feature = lexicon_feature
        self.register_buffer("lexicon", torch.zeros(vocabulary_size))  # valence / 4, in [-1, 1]; 0 if unrated
        self.size = embedding_dim + int(lexicon_feature)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        features = self.embedding(ids)
        if self.lexicon_feature:
            features = torch.cat([features, self.lexicon[ids].unsqueeze(-1)], dim=-1)
        return features


class LastWindow(nn.Module):
    def __init__(self, vocabulary_size: int, window: int, embedding_dim: int, hidden: int, dropout: float,
                 lexicon_feature: bool = False):
        super().__init__()
        self.window = window
        self.features = WordFeatures(vocabulary_size, embedding_dim, lexicon_feature)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(window * self.features.size, hidden), nn.ReLU(),
                                  nn.Dropout(dropout), nn.Linear(hidden, 1))

    def last_tokens(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, window): each sentence's last ``window`` ids, right-aligned, 0 where it is shorter."""
        positions = lengths.unsqueeze(1) - self.window + torch.arange(self.window, device=ids.device)  # (B, window)
        taken = ids.gather(1, positions.clamp(0, ids.shape[1] - 1))
        return torch.where(positions >= 0, taken, torch.zeros_like(taken))

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        window = self.features(self.last_tokens(ids, lengths))  # (B, window, E)
        return self.head(window.flatten(1)).squeeze(-1)


class RecurrentClassifier(nn.Module):
    def __init__(self, vocabulary_size: int, cell: str, embedding_dim: int, hidden: int, layers: int,
                 bidirectional: bool, dropout: float, lexicon_feature: bool = False):
        super().__init__()
        rnn_class = {"lstm": nn.LSTM, "gru": nn.GRU}.get(cell)
        if rnn_class is None:
            raise ValueError(f"sentiment rnn cell must be lstm or gru, not {cell!r}")
        self.features = WordFeatures(vocabulary_size, embedding_dim, lexicon_feature)
        self.dropout = nn.Dropout(dropout)
        self.rnn = rnn_class(self.features.size, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional,
                             dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), 1)

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T), (B,) -> (B, directions * hidden): the last layer's final state in each direction."""
        packed = pack_padded_sequence(self.dropout(self.features(ids)), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        _, state = self.rnn(packed)
        final = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c); GRU: h. (layers * dirs, B, H)
        directions = 2 if self.rnn.bidirectional else 1
        return final[-directions:].transpose(0, 1).reshape(len(ids), -1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.encode(ids, lengths))).squeeze(-1)


def build_network(model_cfg: dict, vocabulary_size: int) -> nn.Module:
    """The network ``model_cfg['kind']`` names (bow, window, rnn), sized by the rest of ``model_cfg``."""
    kind = model_cfg["kind"]
    if kind == "bow":
        return BagOfWords(vocabulary_size, model_cfg["binary"])
    if kind == "window":
        return LastWindow(vocabulary_size, model_cfg["window"], model_cfg["embedding_dim"], model_cfg["hidden"],
                          model_cfg["dropout"], model_cfg["lexicon_feature"])
    if kind == "rnn":
        return RecurrentClassifier(vocabulary_size, model_cfg["cell"], model_cfg["embedding_dim"], model_cfg["hidden"],
                                   model_cfg["layers"], model_cfg["bidirectional"], model_cfg["dropout"],
                                   model_cfg["lexicon_feature"])
    raise ValueError(f"unknown sentiment model kind {kind!r}; use bow, window or rnn")
