"""A token stream cut into batches for truncated backpropagation through time (torch only).

The stream is laid out as ``batch_size`` rows that each continue where they were, so batch
i+1 row b follows batch i row b in the text: the network's state is carried from one batch
to the next and the model learns from context longer than one window.

Under DDP (``ranks`` > 1) every rank must still see its own text continue from batch to batch:
the stream is laid out as ``ranks * batch_size`` rows and rank r owns rows ``r*B .. (r+1)*B - 1``,
a contiguous 1/ranks share of the text. :func:`rank_sampler` hands rank r its own windows in order.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, DistributedSampler


class StreamBatches(Dataset):
    """Item i = (inputs (B, T), targets (B, T)): window i // ranks of the B rows of rank i % ranks;
    targets are inputs shifted by one. With ``ranks`` = 1 (one process), item i is window i of every row.

    Items are interleaved by rank so that the strided split of a ``DistributedSampler`` without
    shuffling (rank r takes items r, r + ranks, r + 2 ranks, ...) gives rank r windows 0, 1, 2, ... of its rows.
    """

    def __init__(self, stream: torch.Tensor, batch_size: int, bptt: int, ranks: int = 1):
        rows = batch_size * ranks
        columns = (len(stream) - 1) // rows
        if columns < 1:
            raise ValueError(f"a stream of {len(stream)} tokens is too short for {batch_size} rows"
                             + (f" on each of {ranks} ranks" if ranks > 1 else ""))
        self.inputs = stream[: columns * rows].view(rows, columns)
        self.targets = stream[1: columns * rows + 1].view(rows, columns)
        self.batch_size, self.bptt, self.ranks = batch_size, bptt, ranks
        self.windows = -(-columns // bptt)  # per rank; every rank has the same number, so DDP steps stay in lockstep

    def __len__(self) -> int:
        return self.windows * self.ranks

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rank, window = i % self.ranks, i // self.ranks
        if window >= self.windows:
            raise IndexError(f"window {window} of {self.windows}")
        rows = slice(rank * self.batch_size, (rank + 1) * self.batch_size)
        columns = slice(window * self.bptt, (window + 1) * self.bptt)
        return self.inputs[rows, columns], self.targets[rows, columns]


def rank_sampler(batches: StreamBatches, rank: int) -> DistributedSampler | None:
    """The sampler that gives ``rank`` its own windows in order; None for one process (plain order).

    Lightning leaves a ``DistributedSampler`` it is given in place instead of inserting its own."""
    if batches.ranks == 1:
        return None
    return DistributedSampler(batches, num_replicas=batches.ranks, rank=rank, shuffle=False, drop_last=False)
