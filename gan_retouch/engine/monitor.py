"""What a run reports: log.jsonl records, running means between records, GPU figures, progress and tables."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from gan_retouch.console import console
from gan_retouch.engine import distributed
from gan_retouch.engine.distributed import DistInfo
from gan_retouch.errors import ConfigError


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a clock read after it is honest (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TimedBatches:
    """The stage's batch iterator, adding up the seconds the loop spends waiting for batches (the data time)."""

    def __init__(self, batches: Iterator) -> None:
        self.batches = batches
        self.waited = 0.0

    def __iter__(self) -> TimedBatches:
        return self

    def __next__(self) -> Any:
        started = time.perf_counter()
        try:
            return next(self.batches)
        finally:
            self.waited += time.perf_counter() - started

    def take_waited(self) -> float:
        """The seconds waited since the last call."""
        waited, self.waited = self.waited, 0.0
        return waited


@dataclass
class LogWindow:
    """Running sums of the loss values between two log records, averaged over DDP ranks when read, and the time
    its steps took: from the start of its first step (validation and saving before it are left out) to the log."""

    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    steps: int = 0
    images: int = 0
    lr: float = 0.0  # the learning rate the last step used
    started: float | None = None
    iterations: int = 0  # steps begun, skipped ones included

    def begin_step(self, device: torch.device) -> None:
        """Start the window's clock at its first step (after the device finished earlier work) and count the step."""
        if self.started is None:
            synchronize(device)
            self.started = time.perf_counter()
        self.iterations += 1

    def add(self, values: dict[str, torch.Tensor], images: int, lr: float) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value.detach().float()
        self.steps += 1
        self.images += images
        self.lr = lr

    def means(self, dist: DistInfo) -> dict[str, float]:
        """Mean of each value over the window's steps and over every rank (a collective under DDP)."""
        keys = list(self.sums)
        if not keys:
            return {}
        stacked = torch.stack([self.sums[k] / max(1, self.steps) for k in keys])
        stacked = distributed.all_reduce_mean(stacked, dist)
        return {key: float(stacked[i]) for i, key in enumerate(keys)}

    def speed(self, world_size: int, device: torch.device, waited: float) -> dict[str, float]:
        """Seconds per step (``sec_per_step``, BasicSR's iter time), of which ``data_time`` waiting for the batch
        (``waited`` seconds in all), and images per second; synchronizes the device once, here."""
        synchronize(device)
        elapsed = time.perf_counter() - self.started if self.started is not None else 0.0
        count = max(1, self.iterations)
        return {"sec_per_step": elapsed / count, "data_time": waited / count,
                "images_per_sec": self.images * world_size / max(elapsed, 1e-9)}


@dataclass
class StepTimes:
    """The step and data time over a whole run (the steps this process trained), for its summary."""

    seconds: float = 0.0
    waited: float = 0.0
    steps: int = 0

    def add(self, window: LogWindow, speed: dict[str, float]) -> None:
        count = max(1, window.iterations)
        self.seconds += speed["sec_per_step"] * count
        self.waited += speed["data_time"] * count
        self.steps += window.iterations

    def figures(self) -> dict[str, float]:
        count = max(1, self.steps)
        return {"sec_per_step": self.seconds / count, "data_time": self.waited / count}


def progress_bar(enabled: bool) -> Progress:
    """The live progress bar of a run (stage, steps, time left, latest losses)."""
    return Progress(
        TextColumn("[bold]{task.fields[stage]}[/]"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=console, disable=not enabled,
    )


def validation_table(step: int, scores: dict[str, float], identity: dict[str, float]) -> Table:
    """Model vs identity baseline at one validation."""
    table = Table(title=f"validation at step {step}", title_justify="left")
    table.add_column("")
    for name in scores:
        table.add_column(name, justify="right")
    table.add_row("model", *(f"{v:.4f}" for v in scores.values()))
    table.add_row("identity", *(f"{identity.get(k, float('nan')):.4f}" for k in scores))
    return table


class GpuMonitor:
    """GPU memory and utilisation through nvidia-ml-py; empty figures on CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.handle = None
        if device.type == "cuda":
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)

    def figures(self) -> dict[str, float]:
        if self.device.type != "cuda":
            return {}
        figures = {"gpu_max_allocated_mb": torch.cuda.max_memory_allocated(self.device) / 2**20}
        if self.handle is not None:
            figures["gpu_util_percent"] = float(self._nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu)
            figures["gpu_used_mb"] = self._nvml.nvmlDeviceGetMemoryInfo(self.handle).used / 2**20
        return figures


class RunLog:
    """Appends one JSON object per logging step to ``log.jsonl`` (and TensorBoard when asked for)."""

    def __init__(self, run_dir: Path, tensorboard: bool) -> None:
        self.path = run_dir / "log.jsonl"
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as exc:
                raise ConfigError(
                    "train.tensorboard is on but TensorBoard is not installed: pip install 'gan-retouch[tensorboard]' "
                    "or set train.tensorboard=false"
                ) from exc
            self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "step":
                    self.writer.add_scalar(key, value, record["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
