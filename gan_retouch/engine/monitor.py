"""What a run reports: log.jsonl records, GPU memory/utilisation via NVML, optional TensorBoard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from gan_retouch.errors import ConfigError


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
