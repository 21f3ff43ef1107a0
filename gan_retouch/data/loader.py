"""``build_loader``: a DataLoader that keeps an accelerator fed (workers, pinned memory, persistent workers)."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from gan_retouch.errors import ConfigError

CPU = torch.device("cpu")


def _worker_init(worker_id: int) -> None:
    """One thread per worker: the workers are the parallelism, and threads would oversubscribe the cores."""
    torch.set_num_threads(1)


def _pin_memory(setting: Any, device: torch.device) -> bool:
    if setting == "auto":
        return device.type == "cuda"
    if isinstance(setting, bool):
        return setting
    raise ConfigError(f"data.pin_memory must be auto, true or false, got {setting!r}")


def build_loader(
    dataset: Dataset,
    data: dict[str, Any],
    batch_size: int,
    sampler: Sampler | None = None,
    device: torch.device = CPU,
    shuffle: bool = False,
    drop_last: bool = False,
) -> DataLoader:
    """Batches of ``dataset`` with the loader settings of ``options["data"]`` (num_workers, pin_memory, ...).

    Augmentation draws its randomness from each item's own generator, so results do not depend on workers.
    """
    workers = data.get("num_workers", 0)
    if not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"data.num_workers must be a non-negative integer, got {workers!r}")
    if batch_size <= 0:
        raise ConfigError(f"batch size must be positive, got {batch_size}")
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=shuffle if sampler is None else False,
        num_workers=workers,
        pin_memory=_pin_memory(data.get("pin_memory", "auto"), device),
        persistent_workers=bool(data.get("persistent_workers", True)) and workers > 0,
        worker_init_fn=_worker_init if workers > 0 else None,
        drop_last=drop_last,
    )
