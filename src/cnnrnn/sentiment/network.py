"""The four sentence classifiers, as plain ``nn.Module``s.

All take ``ids`` (B, T) — token ids padded with 0 — and ``lengths`` (B,), and return one
logit per sentence (B,): positive if > 0.

* :class:`BagOfWords` — logistic regression on which words occur (the seed's option 2: order is lost);
* :class:`LastWindow` — a dense network on only the last ``window`` tokens (option 1: a fixed window);
* :class:`ConvolutionClassifier` — 1-D convolutions (n-gram filters) over the whole sentence,
  max-pooled over time: the strong local-order model;
* :class:`RecurrentClassifier` — an LSTM or GRU, uni- or bidirectional, over the whole sentence,
  packed so that every sentence is read to its own end and padding is never seen.

With ``lexicon_feature`` every model reads the words' human-rated valences (a ``lexicon`` buffer
of one number per vocabulary entry, saved with the weights): the window, CNN and RNN beside each
word's embedding, the bag of words as the sentence's summed and mean rating (order-free, so a
contrast pair still gets one score). 7k training snippets are too few to learn every rare word's polarity.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


class BagOfWords(nn.Module):
    def __init__(self, vocabulary_size: int, binary: bool = True, lexicon_feature: bool = False):
        super().__init__()
        self.vocabulary_size = vocabulary_size
        self.binary = binary
        self.lexicon_feature = lexicon_feature
        self.register_buffer("lexicon", torch.zeros(vocabulary_size))  # valence / 4, in [-1, 1]; 0 if unrated
        self.linear = nn.Linear(vocabulary_size, 1)
        self.lexicon_linear = nn.Linear(2, 1, bias=False) if lexicon_feature else None

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        counts = torch.zeros(len(ids), self.vocabulary_size, device=ids.device)  # (B, V)
        counts.scatter_add_(1, ids, torch.ones_like(ids, dtype=counts.dtype))
        counts[:, 0] = 0  # padding
        if self.binary:
            counts = counts.clamp_max(1)
        logit = self.linear(counts).squeeze(-1)
        if self.lexicon_linear is not None:
            total = self.lexicon[ids].sum(1)  # (B,): padding's rating is 0
            logit = logit + self.lexicon_linear(torch.stack([total, total / lengths.clamp_min(1)], 1)).squeeze(-1)
        return logit


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


class ConvolutionClassifier(nn.Module):
    """n-gram filters of each width in ``widths`` slide over the whole sentence; ReLU, max over time, dropout, linear.

    Convolutions are zero-padded by width - 1 on each side, so a sentence shorter than a filter still
    fills it; the batch padding's features are set to 0 like that padding, and positions whose window
    lies wholly in it are left out of the max, so a sentence scores the same alone as in any batch.
    """

    def __init__(self, vocabulary_size: int, embedding_dim: int, filters: int, widths: list[int], dropout: float,
                 lexicon_feature: bool = False):
        super().__init__()
        self.features = WordFeatures(vocabulary_size, embedding_dim, lexicon_feature)
        self.dropout = nn.Dropout(dropout)
        self.convolutions = nn.ModuleList(nn.Conv1d(self.features.size, filters, w, padding=w - 1) for w in widths)
        self.head = nn.Linear(filters * len(widths), 1)

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T), (B,) -> (B, filters * len(widths)): each filter's largest response in the sentence."""
        real = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0) < lengths.to(ids.device).unsqueeze(1)  # (B, T)
        x = (self.dropout(self.features(ids)) * real.unsqueeze(2)).transpose(1, 2)  # (B, E, T): padding exactly 0
        pooled = []
        for conv in self.convolutions:
            response = torch.relu(conv(x))  # (B, filters, T + w - 1)
            # output position t sees tokens t-w+1..t: it touches the sentence while t < length + w - 1
            positions = torch.arange(response.shape[2], device=ids.device)
            inside = positions.unsqueeze(0) < (lengths.to(ids.device) + conv.kernel_size[0] - 1).unsqueeze(1)  # (B, T')
            pooled.append(response.masked_fill(~inside.unsqueeze(1), 0.0).amax(2))  # ReLU >= 0: 0 never wins falsely
        return torch.cat(pooled, 1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.encode(ids, lengths))).squeeze(-1)


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
    """The network ``model_cfg['kind']`` names (bow, window, cnn, rnn), sized by the rest of ``model_cfg``."""
    kind = model_cfg["kind"]
    if kind == "bow":
        return BagOfWords(vocabulary_size, model_cfg["binary"], model_cfg.get("lexicon_feature", False))
    if kind == "window":
        return LastWindow(vocabulary_size, model_cfg["window"], model_cfg["embedding_dim"], model_cfg["hidden"],
                          model_cfg["dropout"], model_cfg["lexicon_feature"])
    if kind == "cnn":
        return ConvolutionClassifier(vocabulary_size, model_cfg["embedding_dim"], model_cfg["filters"],
                                     list(model_cfg["widths"]), model_cfg["dropout"], model_cfg["lexicon_feature"])
    if kind == "rnn":
        return RecurrentClassifier(vocabulary_size, model_cfg["cell"], model_cfg["embedding_dim"], model_cfg["hidden"],
                                   model_cfg["layers"], model_cfg["bidirectional"], model_cfg["dropout"],
                                   model_cfg["lexicon_feature"])
    raise ValueError(f"unknown sentiment model kind {kind!r}; use bow, window, cnn or rnn")
