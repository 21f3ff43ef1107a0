"""torch.distributed plumbing: started by torchrun, a no-op for a single process."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from gan_retouch.errors import ConfigError
from gan_retouch.runtime import resolve_device

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a torchrun launch; rank 0 of 1 outside one."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    grouped: bool = False  # in a process group: launched by torchrun, also with one process

    @property
    def enabled(self) -> bool:
        return self.grouped or self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self) -> str:
        return f" (rank {self.rank} of {self.world_size})" if self.world_size > 1 else ""


def launch_from_env() -> DistInfo:
    """This process's rank, world size and local rank from torchrun's environment (``RANK``, ``WORLD_SIZE``,
    ``LOCAL_RANK``), checked; no process group is joined."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as exc:
        raise ConfigError(f"RANK / WORLD_SIZE / LOCAL_RANK must be integers (set by torchrun): {exc}") from None
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"RANK={rank} is not a rank of WORLD_SIZE={world}; launch with torchrun, or unset them")
    return DistInfo(rank, world, local)


def init_distributed(device_spec: str) -> DistInfo:
    """Join the process group when launched by torchrun: NCCL on CUDA, gloo on CPU.

    A one-process torchrun run joins one too, so DDP and NCCL run on a single GPU exactly as on many.
    """
    launch = launch_from_env()
    launched = "RANK" in os.environ and "MASTER_ADDR" in os.environ
    if launch.world_size <= 1 and not launched:
        return DistInfo()
    use_cuda = device_spec != "cpu" and torch.cuda.is_available()
    if device_spec.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device_spec!r} asked for under torchrun, but CUDA is not available")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(launch.rank, launch.world_size, launch.local_rank, grouped=True)


def bind_device(device_spec: str, info: DistInfo) -> torch.device:
    """The run's device, made the current CUDA device: ``cuda:LOCAL_RANK`` under torchrun, else the asked one.

    Setting it also for one process on ``cuda:N`` (N > 0) keeps kernels that use the current device (CUDA
    graphs, compiled kernels, NCCL, the caching allocator's streams) off GPU 0.
    """
    device = resolve_device(device_spec)
    if device.type == "cuda":
        if info.enabled:
            device = torch.device(f"cuda:{info.local_rank}")
        torch.cuda.set_device(device)
    return device


def collective_device(info: DistInfo) -> torch.device:
    """Where tensors for collectives must live: the current CUDA device under NCCL, else the CPU."""
    if info.enabled and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def decided_on_main(decide: Callable[[], T], info: DistInfo) -> T:
    """``decide()`` run on rank 0 alone, its result (or its exception) given to every rank: one decision, also
    when the ranks do not share a disk (nodes that each read their own folder would decide differently)."""
    if not info.enabled:
        return decide()
    box: list[object] = [None]
    if info.is_main:
        try:
            box[0] = ("ok", decide())
        except Exception as exc:
            box[0] = ("error", exc)
    dist.broadcast_object_list(box, src=0)
    kind, value = box[0]  # type: ignore[misc]
    if kind == "error":
        raise value
    return value


def union_of_keys(keys: list[str], info: DistInfo) -> list[str]:
    """Every rank's keys in order of first appearance (rank 0's first); a collective under DDP, so a rank with
    no keys still takes part."""
    if not info.enabled:
        return list(keys)
    gathered: list[list[str] | None] = [None] * info.world_size
    dist.all_gather_object(gathered, list(keys))
    return list(dict.fromkeys(key for rank_keys in gathered for key in rank_keys or []))


def gathered_on_main(items: list[T], info: DistInfo) -> list[T]:
    """Every rank's ``items`` on rank 0 (rank 0's first, then rank 1's, ...), and [] on the other ranks; a
    collective, so every rank takes part."""
    if not info.enabled:
        return list(items)
    gathered: list[list[T] | None] | None = [None] * info.world_size if info.is_main else None
    dist.gather_object(list(items), gathered, dst=0)
    return [item for rank_items in gathered or [] for item in rank_items or []]


def all_reduce_sum(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a tensor over ranks (identity for one process)."""
    if info.enabled:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def shutdown(info: DistInfo) -> None:
    """Leave the process group at the end of a run (torchrun's processes then exit cleanly)."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def sync_buffers(modules: list[torch.nn.Module | None], info: DistInfo) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    DDP broadcasts buffers at the start of each forward, so after a step each rank holds the statistics of its own
    last batch; validation and checkpoints use rank 0's.
    """
    if not info.enabled:
        return
    for module in modules:
        if module is not None:
            for buffer in module.buffers():
                dist.broadcast(buffer, src=0)


def average_gradients(module: torch.nn.Module, info: DistInfo) -> None:
    """All-reduce the gradients of a module that is not wrapped in DDP (e.g. distillation adapters)."""
    if not info.enabled:
        return
    for parameter in module.parameters():
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
            parameter.grad /= info.world_size
