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
from gan_retouch.runtime import pci_bus_id


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
        """Mean of each value over the window's steps on every rank (collectives under DDP).

        Every rank takes part, also one whose window is empty (all of its steps skipped): it adds zeros.
        """
        keys = distributed.union_of_keys(list(self.sums), dist)
        if not keys:
            return {}
        device = next(iter(self.sums.values())).device if self.sums else distributed.collective_device(dist)
        zero = torch.zeros((), device=device)
        sums = torch.stack([self.sums.get(key, zero).to(device) for key in keys])
        steps = torch.tensor([float(self.steps if key in self.sums else 0) for key in keys], device=device)
        totals = distributed.all_reduce_sum(torch.stack([sums, steps]), dist).tolist()
        return {key: totals[0][i] / totals[1][i] for i, key in enumerate(keys) if totals[1][i] > 0}

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

    def record(self, window: LogWindow, device: torch.device, world_size: int, waited: float) -> dict[str, float]:
        """The window's speed (``LogWindow.speed``), added to the run's."""
        speed = window.speed(world_size, device, waited)
        self.seconds += speed["sec_per_step"] * max(1, window.iterations)
        self.waited += waited
        self.steps += window.iterations
        return speed

    def figures(self) -> dict[str, float]:
        count = max(1, self.steps)
        return {"sec_per_step": self.seconds / count, "data_time": self.waited / count}


def speed_note(figures: dict[str, float]) -> str:
    """``sec_per_step`` and ``data_time`` in words, for the progress line and the summary."""
    return f"{figures['sec_per_step']:.3f} s/step, of which {figures['data_time']:.3f} s waiting for data"


def best_note(best: dict[str, Any], last_step: int, min_clean: float | None) -> str:
    """Which step best.pt holds, when it is not the last one (the checkpoint to test and distil from)."""
    step, value = best.get("step"), best.get("value")
    if step is None and min_clean is not None:
        return (f" No validation kept psnr_clean >= {min_clean:g} dB (val.min_psnr_clean), so there is no "
                "best.pt: use latest.pt, or lower val.min_psnr_clean.")
    if step is None or step == last_step:
        return ""
    return f" best.pt is step {step} ({best['metric']} {value:.4g})."


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
    """Figures of the run's GPU for each log record; none on CPU.

    ``gpu_max_allocated_mb`` is the allocator's peak since the previous record (reset at each read).
    ``gpu_util_percent`` and ``gpu_used_mb`` (device-wide) come from NVML, which finds the device by its PCI bus
    id: ``CUDA_VISIBLE_DEVICES`` (Slurm) renumbers CUDA devices but not NVML's. A query NVML refuses (utilisation
    on a MIG slice) leaves that figure out, said once; it never stops the run.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.handle = None
        self._nvml: Any = None
        self._left_out: set[str] = set()
        if device.type == "cuda":
            try:
                import pynvml

                pynvml.nvmlInit()
                self.handle = pynvml.nvmlDeviceGetHandleByPciBusId(pci_bus_id(device))
                self._nvml = pynvml
            except Exception as exc:  # ImportError or one of NVMLError's many subclasses: said, not hidden
                console.print(f"[yellow]GPU utilisation and memory from NVML are left out of log.jsonl: "
                              f"{type(exc).__name__}: {exc}[/]")

    def figures(self) -> dict[str, float]:
        if self.device.type != "cuda":
            return {}
        figures = {"gpu_max_allocated_mb": torch.cuda.max_memory_allocated(self.device) / 2**20}
        torch.cuda.reset_peak_memory_stats(self.device)
        if self.handle is not None:
            self._query(figures, "gpu_util_percent", lambda: float(self._nvml.nvmlDeviceGetUtilizationRates(
                self.handle).gpu))
            self._query(figures, "gpu_used_mb", lambda: self._nvml.nvmlDeviceGetMemoryInfo(self.handle).used / 2**20)
        return figures

    def _query(self, figures: dict[str, float], key: str, read: Any) -> None:
        try:
            figures[key] = read()
        except self._nvml.NVMLError as exc:
            if key not in self._left_out:
                self._left_out.add(key)
                console.print(f"[yellow]{key} is left out of log.jsonl: NVML says {exc} (a MIG slice?)[/]")


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


LOWER_IS_BETTER = {"lpips"}


def is_better(metric: str, value: float, best: float | None) -> bool:
    """Whether ``value`` improves on ``best`` for this metric (lower is better for LPIPS): what makes best.pt."""
    if best is None:
        return True
    return value < best if metric in LOWER_IS_BETTER else value > best
