"""The translate ``LightningDataModule``: sentence pairs as padded batches for teacher forcing."""

from __future__ import annotations

import json
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from cnnrnn.translate.tokens import BOS, EOS, PAD


class SentencePairs(Dataset):
    """``{split}.pt`` of prepare: (source ids, target ids) per pair, each cut to ``max_tokens``."""

    def __init__(self, path: Path, max_tokens: int):
        saved = torch.load(path)
        self.source, self.target = saved["source"], saved["target"]
        self.source_ids = [ids[:max_tokens] for ids in saved["source_ids"]]
        self.target_ids = [ids[:max_tokens] for ids in saved["target_ids"]]

    def __len__(self) -> int:
        return len(self.source_ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.source_ids[index], self.target_ids[index]


class LengthBuckets(torch.utils.data.Sampler):
    """Shuffled batches of pairs of similar length: each pool of ``pool`` batches is sorted by length before it is
    cut, so a batch pads little (the decoder runs one step per target token of its longest pair)."""

    def __init__(self, lengths: list[int], batch_size: int, pool: int = 50):
        self.lengths, self.batch_size, self.pool = lengths, batch_size, pool

    def __iter__(self):
        order = torch.randperm(len(self.lengths)).tolist()  # the global generator: seeded by the train stage
        batches = []
        for start in range(0, len(order), self.batch_size * self.pool):
            chunk = sorted(order[start:start + self.batch_size * self.pool], key=lambda i: self.lengths[i])
            batches += [chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        for index in torch.randperm(len(batches)).tolist():
            yield batches[index]

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size


def pad(sequences: list[torch.Tensor]) -> torch.Tensor:
    return torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True, padding_value=PAD)


def collate_pairs(items: list[tuple[torch.Tensor, torch.Tensor]]):
    """-> source (B, S), source lengths (B,), target in (B, T: <s> first), target out (B, T: </s> last)."""
    sources = [s if len(s) else torch.tensor([1]) for s, _ in items]  # an empty source reads as one <unk>
    bos, eos = torch.tensor([BOS]), torch.tensor([EOS])
    return (pad(sources), torch.tensor([len(s) for s in sources]), pad([torch.cat([bos, t]) for _, t in items]),
            pad([torch.cat([t, eos]) for _, t in items]))


class PairDataModule(pl.LightningDataModule):
    def __init__(self, prepared: Path, batch_size: int, max_tokens: int, num_workers: int = 0):
        super().__init__()
        self.prepared = Path(prepared)
        self.batch_size, self.max_tokens, self.num_workers = batch_size, max_tokens, num_workers
        self.info = json.loads((self.prepared / "info.json").read_text())
        self.datasets: dict[str, SentencePairs] = {}

    def setup(self, stage: str | None = None) -> None:
        for split in ("train", "val"):
            self.datasets.setdefault(split, SentencePairs(self.prepared / f"{split}.pt", self.max_tokens))

    def loader(self, split: str, shuffle: bool = False) -> DataLoader:
        return DataLoader(self.datasets[split], batch_size=self.batch_size, shuffle=shuffle, collate_fn=collate_pairs,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        data = self.datasets["train"]
        if self.trainer is not None and self.trainer.world_size > 1:  # DDP: Lightning's distributed sampler shards it
            return self.loader("train", shuffle=True)
        buckets = LengthBuckets([len(t) for t in data.target_ids], self.batch_size)
        return DataLoader(data, batch_sampler=buckets, collate_fn=collate_pairs, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")
