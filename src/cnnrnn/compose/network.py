"""An LSTM over piano-roll frames with one Bernoulli output per pitch (Boulanger-Lewandowski et al. 2012's setting).

Frame t (P pitches, 0/1) goes in; the logits of frame t+1 come out. The first input is an all-zero frame, so
the model also predicts how a piece starts. Torch only: no Lightning, no MLflow.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class FrameLSTM(nn.Module):
    """rolls (B, T, P) -> logits (B, T, P) of each frame given the frames before it. ``cfg``: ``hidden``,
    ``layers``, ``dropout``."""

    def __init__(self, cfg: dict[str, Any], pitches: int):
        super().__init__()
        self.pitches = pitches
        self.input = nn.Linear(pitches, cfg["hidden"])
        self.lstm = nn.LSTM(cfg["hidden"], cfg["hidden"], cfg["layers"], batch_first=True,
                            dropout=cfg["dropout"] if cfg["layers"] > 1 else 0.0)
        self.dropout = nn.Dropout(cfg["dropout"])
        self.output = nn.Linear(cfg["hidden"], pitches)

    def forward(self, rolls: torch.Tensor, state=None) -> tuple[torch.Tensor, Any]:
        """Teacher forcing over whole pieces: the input is the roll shifted right by one zero frame."""
        inputs = torch.cat([rolls.new_zeros(rolls.size(0), 1, self.pitches), rolls[:, :-1]], dim=1)
        return self.step(inputs, state)

    def step(self, inputs: torch.Tensor, state=None) -> tuple[torch.Tensor, Any]:
        """inputs (B, T, P) -> logits of the *next* frames (B, T, P), new state."""
        hidden, state = self.lstm(self.dropout(torch.relu(self.input(inputs))), state)
        return self.output(self.dropout(hidden)), state


@torch.no_grad()
def sample(model: FrameLSTM, frames: int, generator: torch.Generator, temperature: float = 1.0,
           primer: torch.Tensor | None = None) -> torch.Tensor:
    """A new roll (frames, P): ``primer`` (t, P) first (if any), then each frame drawn pitch by pitch from the
    model's Bernoulli probabilities (logits / ``temperature``). The same generator state gives the same roll."""
    model.eval()
    state, out = None, []
    previous = torch.zeros(1, 1, model.pitches)
    if primer is not None and len(primer):
        _, state = model.step(torch.cat([previous, primer[None, :-1].float()], dim=1))
        previous = primer[None, -1:].float()
        out = [row for row in primer.float()]
    while len(out) < frames:
        logits, state = model.step(previous, state)
        probabilities = torch.sigmoid(logits[0, -1] / temperature)
        frame = (torch.rand(probabilities.shape, generator=generator) < probabilities).float()
        out.append(frame)
        previous = frame[None, None]
    return torch.stack(out[:frames]).to(torch.uint8)
