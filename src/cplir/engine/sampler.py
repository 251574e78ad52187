"""A resumable, rank-sharded shuffling sampler.

The order of epoch e is a pure function of (seed, e); ranks take interleaved slices of it; ``start`` skips the
samples already consumed, so a resumed run sees exactly the batches an uninterrupted run would have seen.
"""

from typing import Iterator

import torch
from torch.utils.data import Sampler


class ResumableSampler(Sampler):
    def __init__(self, num_samples: int, seed: int = 0, rank: int = 0, world_size: int = 1, shuffle: bool = True):
        if num_samples < world_size:
            raise ValueError(f"{num_samples} samples cannot be shared among {world_size} processes")
        self.num_samples = num_samples
        self.seed, self.rank, self.world_size, self.shuffle = seed, rank, world_size, shuffle
        self.per_rank = num_samples // world_size  # the tail that does not divide evenly is dropped
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate epoch ``epoch`` from this rank's ``start``-th sample."""
        self.epoch, self.start = epoch, start

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            order = torch.randperm(self.num_samples, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            order = torch.arange(self.num_samples)
        mine = order[self.rank: self.per_rank * self.world_size: self.world_size]
        return iter(mine[self.start:].tolist())

    def __len__(self) -> int:
        return self.per_rank - self.start
