"""The final distillation report: teacher vs student vs identity on the validation set, with size, MACs and
CPU latency, printed as a table and saved as ``distill_report.json`` in the run folder."""

from __future__ import annotations

import copy
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from rich.table import Table
from torch import nn

from gan_retouch.console import console
from gan_retouch.errors import ConfigError
from gan_retouch.nets.base import run_generator
from gan_retouch.nets.profile import count_macs, count_parameters, model_size_mb

REPORT_NAME = "distill_report.json"


def write_report(run_dir: Path, options: dict[str, Any], teacher_scores: dict[str, float],
                 final: dict[str, float], teacher: nn.Module, student: nn.Module, teacher_path: str | None) -> Path:
    """Print and save the teacher vs student vs identity table (quality, size, MACs, CPU latency)."""
    size, runs = int(options["distill"]["latency_size"]), int(options["distill"]["latency_runs"])
    rows = {
        "teacher": {**_quality(teacher_scores), **model_figures(teacher, size, runs)},
        "student": {**_quality(final), **model_figures(student, size, runs)},
        "identity": {**_quality(final, "identity_"), "params": 0, "mb_fp32": 0.0, "mb_fp16": 0.0,
                     "gmacs": 0.0, "cpu_ms": None},
    }
    report = {"size": size, "latency_runs": runs, "teacher": teacher_path, "rows": rows}
    path = Path(run_dir) / REPORT_NAME
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    console.print(distill_table(report))
    console.print(f"saved {path}")
    return path


def _quality(metrics: dict[str, float], prefix: str = "") -> dict[str, float | None]:
    return {key: metrics.get(prefix + key) for key in ("psnr", "ssim", "ms_ssim")}


def model_figures(model: nn.Module, size: int, runs: int) -> dict[str, Any]:
    """Parameters, MB (fp32, fp16), GMACs and median CPU latency (ms, fp32, batch 1) at ``size`` x ``size``."""
    return {
        "params": count_parameters(model),
        "mb_fp32": model_size_mb(model, torch.float32),
        "mb_fp16": model_size_mb(model, torch.float16),
        "gmacs": count_macs(model, (1, 3, size, size)) / 1e9,
        "cpu_ms": cpu_latency_ms(model, size, runs),
    }


def cpu_latency_ms(model: nn.Module, size: int, runs: int) -> float:
    """Median wall time in ms of ``runs`` fp32 CPU forward passes on one ``size`` x ``size`` image (1 warm-up)."""
    if runs < 1:
        raise ConfigError(f"distill.latency_runs must be >= 1, got {runs}")
    cpu_model = copy.deepcopy(model).float().cpu().eval()
    image = torch.rand(1, 3, size, size)
    times = []
    with torch.no_grad():
        run_generator(cpu_model, image)
        for _ in range(runs):
            start = time.perf_counter()
            run_generator(cpu_model, image)
            times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def distill_table(report: dict[str, Any]) -> Table:
    """The rich table of a distillation report."""
    size = report["size"]
    table = Table(title=f"teacher vs student vs identity (validation set; size figures at {size}x{size})")
    for column in ("model", "PSNR", "SSIM", "MS-SSIM", "params", "MB fp32", "MB fp16", "GMACs",
                   f"CPU ms (median of {report['latency_runs']})"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, row in report["rows"].items():
        table.add_row(
            name, _fmt(row["psnr"], ".2f"), _fmt(row["ssim"], ".4f"), _fmt(row["ms_ssim"], ".4f"),
            f"{row['params']:,}", f"{row['mb_fp32']:.2f}", f"{row['mb_fp16']:.2f}", f"{row['gmacs']:.1f}",
            _fmt(row["cpu_ms"], ".0f"),
        )
    return table


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
