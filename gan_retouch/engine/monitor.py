"""What a run reports: log.jsonl records, running means between records, GPU figures, progress and tables."""

from __future__ import annotations

import json
import time
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


@dataclass
class LogWindow:
    """Running sums of the loss values between two log records, averaged over DDP ranks when read."""

    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    steps: int = 0
    images: int = 0
    lr: float = 0.0  # the learning rate the last step used
    started: float = field(default_factory=time.perf_counter)

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

    def speed(self, world_size: int) -> dict[str, float]:
        elapsed = time.perf_counter() - self.started
        return {"sec_per_step": elapsed / max(1, self.steps),
                "images_per_sec": self.images * world_size / max(elapsed, 1e-9)}


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
