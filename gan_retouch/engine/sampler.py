"""A deterministic, resumable stream of dataset indices, sharded over DDP ranks.

Batch ``b`` of rank ``r`` is the same whenever it is drawn, so a run resumed at step k sees exactly the batches
an uninterrupted run would have seen. Indices are *virtual*: the dataset maps ``v`` to pair ``v % len`` and seeds
its augmentation from ``v``, so a pair gets fresh augmentation in every epoch.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

INFINITE_THRESHOLD = 2**30  # datasets at least this long are streams: no shuffling needed


class StreamSampler(Sampler[int]):
    """Infinite index stream starting at batch ``start_batch``; shuffled per epoch from ``seed``."""

    def __init__(
        self, dataset_length: int, batch_size: int, seed: int, start_batch: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        if dataset_length <= 0:
            raise ValueError("cannot sample from an empty dataset")
        self.length = dataset_length
        self.batch_size = batch_size
        self.seed = seed
        self.start_batch = start_batch
        self.rank = rank
        self.world_size = world_size
        self._epoch_cache: tuple[int, torch.Tensor] | None = None

    def _permutation(self, epoch: int) -> torch.Tensor:
        if self._epoch_cache is None or self._epoch_cache[0] != epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch_cache = (epoch, torch.randperm(self.length, generator=generator))
        return self._epoch_cache[1]

    def index_at(self, position: int) -> int:
        """The virtual index at global stream position ``position``."""
        if self.length >= INFINITE_THRESHOLD:
            return position
        epoch, offset = divmod(position, self.length)
        return epoch * self.length + int(self._permutation(epoch)[offset])

    def __iter__(self) -> Iterator[int]:
        batch = self.start_batch
        while True:
            first = (batch * self.world_size + self.rank) * self.batch_size
            for position in range(first, first + self.batch_size):
                yield self.index_at(position)
            batch += 1

    def __len__(self) -> int:  # an infinite stream; DataLoader only needs this for progress estimates
        return 2**62
