"""A folder split over the processes of a torchrun launch: `retouch` on a million photos, one process per GPU.

    torchrun --nproc-per-node=8 -m gan_retouch retouch photos/ -o out/ --checkpoint CKPT

No process group is needed: each process reads its rank from the launch's environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``: ``engine.distributed.launch_from_env``) and takes every WORLD_SIZE-th output file, counted over the same sorted list on
every rank, so each output is written by exactly one process (two inputs that would write the same file land on
the same rank, where the usual "claimed twice" check sees them). On CUDA each process uses ``cuda:LOCAL_RANK``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

import torch

from gan_retouch.engine.distributed import DistInfo

T = TypeVar("T")


def share(items: Sequence[T], keys: Sequence[Hashable], launch: DistInfo) -> list[T]:
    """The items of this rank: those whose key (the output file) comes, in order of first appearance, at a
    position p with p % world_size == rank."""
    order = {key: index for index, key in enumerate(dict.fromkeys(keys))}
    return [item for item, key in zip(items, keys, strict=True) if order[key] % launch.world_size == launch.rank]


def launch_device(device: torch.device, launch: DistInfo) -> torch.device:
    """``cuda:LOCAL_RANK`` for the processes of a multi-process launch on CUDA, else ``device``."""
    if device.type == "cuda" and launch.world_size > 1:
        return torch.device("cuda", launch.local_rank)
    return device
