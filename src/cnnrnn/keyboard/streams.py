"""A token stream cut into batches for truncated backpropagation through time (torch only).

The stream is laid out as ``batch_size`` rows that each continue where they were, so batch
i+1 row b follows batch i row b in the text: the network's state is carried from one batch
to the next and the model learns from context longer than one window.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class StreamBatches(Dataset):
    """Item i = (inputs (B, T), targets (B, T)): window i of every row; targets are inputs shifted by one."""

    def __init__(self, stream: torch.Tensor, batch_size: int, bptt: int):
        columns = (len(stream) - 1) // batch_size
        if columns < 1:
            raise ValueError(f"a stream of {len(stream)} tokens is too short for {batch_size} rows")
        self.inputs = stream[: columns * batch_size].view(batch_size, columns)
        self.targets = stream[1: columns * batch_size + 1].view(batch_size, columns)
        self.bptt = bptt

    def __len__(self) -> int:
        return -(-self.inputs.shape[1] // self.bptt)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        window = slice(i * self.bptt, (i + 1) * self.bptt)
        return self.inputs[:, window], self.targets[:, window]
