"""A recurrent language model for words or characters, as a plain ``nn.Module``.

Embedding -> LSTM/GRU -> output distribution over the vocabulary. Words use an adaptive
softmax (Grave et al. 2017): frequent words get the full hidden size, rare ones share
smaller clusters, so a 11k-word vocabulary costs a fraction of a full softmax per step.
Characters (about 70 symbols) use a plain softmax.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

State = tuple[torch.Tensor, torch.Tensor] | torch.Tensor  # LSTM (h, c) or GRU h, each (layers, B, H)


class RecurrentLanguageModel(nn.Module):
    def __init__(self, vocabulary_size: int, cell: str, embedding_dim: int, hidden: int, layers: int, dropout: float,
                 softmax: dict):
        super().__init__()
        rnn_class = {"lstm": nn.LSTM, "gru": nn.GRU}.get(cell)
        if rnn_class is None:
            raise ValueError(f"keyboard rnn cell must be lstm or gru, not {cell!r}")
        self.vocabulary_size = vocabulary_size
        self.embedding = nn.Embedding(vocabulary_size, embedding_dim)
        self.dropout = nn.Dropout(dropout)
        self.rnn = rnn_class(embedding_dim, hidden, num_layers=layers, batch_first=True,
                             dropout=dropout if layers > 1 else 0.0)
        self.adaptive = softmax["kind"] == "adaptive"
        cutoffs = [c for c in softmax["cutoffs"] if c < vocabulary_size - 1] if self.adaptive else []
        if self.adaptive and cutoffs:
            self.head = nn.AdaptiveLogSoftmaxWithLoss(hidden, vocabulary_size, cutoffs, div_value=softmax["div_value"])
        else:
            self.adaptive = False
            self.head = nn.Linear(hidden, vocabulary_size)

    def forward(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """ids (B, T) -> hidden outputs (B, T, H) and the state after the last step."""
        outputs, state = self.rnn(self.dropout(self.embedding(ids)), state)
        return self.dropout(outputs), state

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood (nats per token) of ``targets`` (B, T) given ``outputs`` (B, T, H)."""
        flat = outputs.reshape(-1, outputs.shape[-1])
        if self.adaptive:
            return self.head(flat, targets.reshape(-1)).loss
        return F.cross_entropy(self.head(flat), targets.reshape(-1))

    def token_losses(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of each target: (B, T, H), (B, T) -> (B, T)."""
        flat = outputs.reshape(-1, outputs.shape[-1])
        if self.adaptive:
            nll = -self.head(flat, targets.reshape(-1)).output
        else:
            nll = F.cross_entropy(self.head(flat), targets.reshape(-1), reduction="none")
        return nll.view(targets.shape)

    def log_probs(self, outputs: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of every token: (..., H) -> (..., V)."""
        flat = outputs.reshape(-1, outputs.shape[-1])
        logp = self.head.log_prob(flat) if self.adaptive else torch.log_softmax(self.head(flat), dim=-1)
        return logp.view(*outputs.shape[:-1], -1)


def build_network(model_cfg: dict, vocabulary_size: int) -> RecurrentLanguageModel:
    return RecurrentLanguageModel(vocabulary_size, model_cfg["cell"], model_cfg["embedding_dim"], model_cfg["hidden"],
                                  model_cfg["layers"], model_cfg["dropout"], model_cfg["softmax"])
