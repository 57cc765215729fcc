"""An LSTM over piano-roll frames with one Bernoulli output per pitch (Boulanger-Lewandowski et al. 2012's setting).

Frame t (P pitches, 0/1) goes in; the LSTM's state after frames < t gives frame t's distribution. The first input
is an all-zero frame, so the model also predicts how a piece starts. How a frame's P Bernoulli outputs depend on
each other is the model's ``frame_output``:

- ``independent``: every pitch from the LSTM state alone (one linear layer), independently of the frame's other
  pitches: the plain LSTM of the JSB literature (about 8.5 nats per frame);
- ``nade``: pitch by pitch, low to high, each conditioned on the state *and* on the pitches already decided below
  it in the same frame, through a NADE (Larochelle & Murray 2011) whose biases the state sets: the RNN-NADE of
  Boulanger-Lewandowski et al. (2012, about 5.6 nats). Chords are joint: a bass note makes its third and fifth
  likelier. Training and NLL stay one parallel pass (teacher forcing inside the frame too); drawing a frame takes
  P small sequential steps.

Either way the network's ``forward`` gives, for every pitch, the logit of its Bernoulli given what it is
conditioned on, so the summed binary cross-entropy is the exact NLL. Torch only: no Lightning, no MLflow.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from cnnrnn.errors import UserError

FRAME_OUTPUTS = ("independent", "nade")


class IndependentOutput(nn.Module):
    """One logit per pitch from the state: the frame's pitches are independent given the past."""

    def __init__(self, hidden: int, pitches: int):
        super().__init__()
        self.linear = nn.Linear(hidden, pitches)

    def forward(self, hidden: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        return self.linear(hidden)

    def draw(self, hidden: torch.Tensor, decide: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        return decide(self.linear(hidden))


class NadeOutput(nn.Module):
    """A NADE over the P pitches of a frame, biases from the state ``h``: with ``x<p`` the frame's pitches below p,
    ``a_p = c(h) + W x<p``, ``logit_p = b(h)_p + V_p . sigmoid(a_p)``."""

    def __init__(self, hidden: int, pitches: int, units: int):
        super().__init__()
        self.visible_bias = nn.Linear(hidden, pitches)  # b(h)
        self.hidden_bias = nn.Linear(hidden, units)  # c(h)
        self.pitch_in = nn.Parameter(torch.randn(pitches, units) / units ** 0.5)  # W: a decided pitch -> units
        self.pitch_out = nn.Parameter(torch.randn(pitches, units) / units ** 0.5)  # V: units -> a pitch's logit

    def forward(self, hidden: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """hidden (B, T, H), the frames themselves (B, T, P) -> logit of each pitch given those below it (B, T, P)."""
        contributions = frames.unsqueeze(-1) * self.pitch_in  # (B, T, P, U)
        below = torch.cumsum(contributions, dim=2) - contributions  # only the pitches strictly below p
        units = torch.sigmoid(self.hidden_bias(hidden).unsqueeze(2) + below)
        return self.visible_bias(hidden) + (units * self.pitch_out).sum(-1)

    def draw(self, hidden: torch.Tensor, decide: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """hidden (N, H) -> frames (N, P), pitch by pitch from the lowest: ``decide`` turns logits (N,) into 0/1."""
        visible, activation = self.visible_bias(hidden), self.hidden_bias(hidden)
        frame = []
        for p in range(visible.size(1)):
            on = decide(visible[:, p] + (torch.sigmoid(activation) * self.pitch_out[p]).sum(-1))
            activation = activation + on[:, None] * self.pitch_in[p]
            frame.append(on)
        return torch.stack(frame, dim=1)


class FrameLSTM(nn.Module):
    """rolls (B, T, P) -> logits (B, T, P) of each pitch given the frames before it (and, for ``nade``, the pitches
    below it in its own frame). ``cfg``: ``hidden``, ``layers``, ``dropout``, ``frame_output``, ``nade_units``."""

    def __init__(self, cfg: dict[str, Any], pitches: int):
        super().__init__()
        self.pitches = pitches
        self.frame_output = cfg.get("frame_output", "independent")  # model files written before nade: independent
        if self.frame_output not in FRAME_OUTPUTS:
            raise UserError(f"compose.model.frame_output is {self.frame_output!r}; use {' or '.join(FRAME_OUTPUTS)}")
        units = cfg.get("nade_units")
        if self.frame_output == "nade" and (isinstance(units, bool) or not isinstance(units, int) or units < 1):
            raise UserError(f"compose.model.nade_units is {units!r}; frame_output nade needs a whole number >= 1")
        self.input = nn.Linear(pitches, cfg["hidden"])
        self.lstm = nn.LSTM(cfg["hidden"], cfg["hidden"], cfg["layers"], batch_first=True,
                            dropout=cfg["dropout"] if cfg["layers"] > 1 else 0.0)
        self.dropout = nn.Dropout(cfg["dropout"])
        self.output = (NadeOutput(cfg["hidden"], pitches, cfg["nade_units"]) if self.frame_output == "nade"
                       else IndependentOutput(cfg["hidden"], pitches))

    def forward(self, rolls: torch.Tensor, state=None) -> tuple[torch.Tensor, Any]:
        """Teacher forcing over whole pieces: the LSTM reads the roll shifted right by one zero frame."""
        hidden, state = self.recur(self.shifted(rolls), state)
        return self.output(self.dropout(hidden), rolls), state

    def shifted(self, rolls: torch.Tensor) -> torch.Tensor:
        return torch.cat([rolls.new_zeros(rolls.size(0), 1, self.pitches), rolls[:, :-1]], dim=1)

    def recur(self, inputs: torch.Tensor, state=None) -> tuple[torch.Tensor, Any]:
        """inputs (B, T, P) -> the state after each (B, T, H), which sets the *next* frame's distribution."""
        return self.lstm(self.dropout(torch.relu(self.input(inputs))), state)

    def draw(self, hidden: torch.Tensor, decide: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """hidden (N, H) -> one frame (N, P) each, every pitch 0/1 as ``decide`` says from its logit."""
        return self.output.draw(self.dropout(hidden), decide)


@torch.no_grad()
def predicted_frames(model: FrameLSTM, roll: torch.Tensor) -> torch.Tensor:
    """(T, P) bool: each frame predicted from the true frames before it, every pitch on where its probability is
    above 0.5 (for ``nade``, greedily from the lowest pitch, given the pitches predicted below it, not the true
    ones): the frames Bay et al.'s frame accuracy counts."""
    model.eval()
    hidden, _ = model.recur(model.shifted(roll[None].float()))
    return model.draw(hidden[0], lambda logits: (logits > 0).float()).bool()


@torch.no_grad()
def sample(model: FrameLSTM, frames: int, generator: torch.Generator, temperature: float = 1.0,
           primer: torch.Tensor | None = None) -> torch.Tensor:
    """A new roll (frames, P): ``primer`` (t, P) first (if any), then each frame drawn pitch by pitch from the
    model's Bernoulli probabilities (logits / ``temperature``). The same generator state gives the same roll."""
    model.eval()
    state, out = None, []
    previous = torch.zeros(1, 1, model.pitches)
    if primer is not None and len(primer):
        _, state = model.recur(torch.cat([previous, primer[None, :-1].float()], dim=1))
        previous = primer[None, -1:].float()
        out = [row for row in primer.float()]

    def decide(logits: torch.Tensor) -> torch.Tensor:
        return (torch.rand(logits.shape, generator=generator) < torch.sigmoid(logits / temperature)).float()

    while len(out) < frames:
        hidden, state = model.recur(previous, state)
        frame = model.draw(hidden[:, -1], decide)[0]
        out.append(frame)
        previous = frame[None, None]
    return torch.stack(out[:frames]).to(torch.uint8)
