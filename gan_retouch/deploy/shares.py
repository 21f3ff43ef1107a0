"""A folder split over the processes of a torchrun launch: `retouch` on a million photos, one process per GPU.

    torchrun --nproc-per-node=8 -m gan_retouch retouch photos/ -o out/ --checkpoint CKPT

No process group is needed: each process reads its rank from the launch's environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``) and takes every WORLD_SIZE-th output file, counted over the same sorted list on
every rank, so each output is written by exactly one process (two inputs that would write the same file land on
the same rank, where the usual "claimed twice" check sees them). On CUDA each process uses ``cuda:LOCAL_RANK``.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch

from gan_retouch.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Launch:
    """This process's place in a torchrun launch; rank 0 of 1 outside one."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    def describe(self) -> str:
        return f" (rank {self.rank} of {self.world_size})" if self.world_size > 1 else ""


def current_launch() -> Launch:
    """The launch this process belongs to, from torchrun's environment variables."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as exc:
        raise ConfigError(f"RANK / WORLD_SIZE / LOCAL_RANK must be integers (set by torchrun): {exc}") from None
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"RANK={rank} is not a rank of WORLD_SIZE={world}; launch with torchrun, or unset them")
    return Launch(rank, world, local)


def share(items: Sequence[T], keys: Sequence[Hashable], launch: Launch) -> list[T]:
    """The items of this rank: those whose key (the output file) comes, in order of first appearance, at a
    position p with p % world_size == rank."""
    order = {key: index for index, key in enumerate(dict.fromkeys(keys))}
    return [item for item, key in zip(items, keys, strict=True) if order[key] % launch.world_size == launch.rank]


def launch_device(device: torch.device, launch: Launch) -> torch.device:
    """``cuda:LOCAL_RANK`` for the processes of a multi-process launch on CUDA, else ``device``."""
    if device.type == "cuda" and launch.world_size > 1:
        return torch.device("cuda", launch.local_rank)
    return device
