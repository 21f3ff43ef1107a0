"""The final distillation report: teacher vs student vs identity on the validation set, with size, MACs and
CPU latency, printed as a table and saved as ``distill_report.json`` in the run folder.

Figures come from ``inference.profile`` and latency from the inference path ``retouch`` uses (``deploy.backends``:
BatchNorm folded, the faster memory format), so the table says what a user will see."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from rich.table import Table
from torch import nn

from gan_retouch.console import console
from gan_retouch.deploy.backends import select_backend
from gan_retouch.inference.plan import InferencePlan
from gan_retouch.inference.profile import measure_latency, model_figures, stand_in_mask

REPORT_NAME = "distill_report.json"


def write_report(run_dir: Path, options: dict[str, Any], teacher_scores: dict[str, float],
                 final: dict[str, float], teacher: nn.Module, student: nn.Module, teacher_path: str | None) -> Path:
    """Print and save the teacher vs student vs identity table (quality, size, MACs, CPU latency)."""
    size, seconds = int(options["distill"]["latency_size"]), float(options["distill"]["latency_time_s"])
    rows = {
        "teacher": {**_quality(teacher_scores), **_figures(teacher, size, seconds)},
        "student": {**_quality(final), **_figures(student, size, seconds)},
        "identity": {**_quality(final, "identity_"), "params": 0, "mb_fp32": 0.0, "mb_fp16": 0.0,
                     "gmacs": 0.0, "cpu_ms": None, "backend": None},
    }
    report = {"size": size, "latency_time_s": seconds, "teacher": teacher_path, "rows": rows}
    path = Path(run_dir) / REPORT_NAME
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    console.print(distill_table(report))
    console.print(f"saved {path}")
    return path


def _quality(metrics: dict[str, float], prefix: str = "") -> dict[str, float | None]:
    return {key: metrics.get(prefix + key) for key in ("psnr", "ssim", "ms_ssim")}


def _figures(model: nn.Module, size: int, seconds: float) -> dict[str, Any]:
    """Size figures plus the median CPU latency (ms, fp32, batch 1) through the backend ``retouch`` would pick.

    Measured on a float32 CPU copy: the teacher may run in fp16 on the GPU (``distill.teacher_fp16``).
    """
    model = copy.deepcopy(model).to(device="cpu", dtype=torch.float32)
    backend = select_backend(model, torch.device("cpu"), InferencePlan(backend="torch"))
    image = torch.rand(1, 3, size, size)
    mask = stand_in_mask(image, backend.takes_mask)
    latency = measure_latency(lambda: backend(image, mask), min_time_s=seconds)
    return {**model_figures(model, size), "cpu_ms": latency["median"], "backend": backend.description}


def distill_table(report: dict[str, Any]) -> Table:
    """The rich table of a distillation report."""
    size = report["size"]
    table = Table(title=f"teacher vs student vs identity (validation set; size figures at {size}x{size})")
    for column in ("model", "PSNR", "SSIM", "MS-SSIM", "params", "MB fp32", "MB fp16", "GMACs",
                   "CPU ms (median)"):
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
