"""The results tables of `gan-retouch test`: means over images, ``metrics.csv`` / ``metrics.json``, and the
table printed at the end."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import torch
from rich.table import Table

from gan_retouch.evaluate.page import format_value, metric_info

IDENTITY = "identity (input)"


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value


def summarise(per_image: list[dict[str, dict[str, float]]], labels: list[str]) -> dict[str, dict[str, float]]:
    """Model label -> metric -> mean over images (NaN values, e.g. an empty mask, are left out)."""
    summary: dict[str, dict[str, float]] = {}
    for label in labels:
        names = list(dict.fromkeys(name for row in per_image for name in row[label]))
        summary[label] = {}
        for name in names:
            values = torch.tensor([row[label][name] for row in per_image], dtype=torch.float64)
            summary[label][name] = float(values.nanmean()) if values.numel() else math.nan
    return summary


def write_tables(folder: Path, names: list[str], per_image: list[dict[str, dict[str, float]]],
                 summary: dict[str, dict[str, float]], facts: dict[str, Any]) -> None:
    """``metrics.csv`` (one line per image and model) and ``metrics.json`` (facts, summary, per image)."""
    metrics = list(dict.fromkeys(name for values in summary.values() for name in values))
    with (folder / "metrics.csv").open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["image", "model", *metrics])
        for name, row in zip(names, per_image, strict=True):
            for label, values in row.items():
                writer.writerow([name, label, *(f"{values[m]:.6f}" if m in values else "" for m in metrics)])
    document = {
        **facts,
        "summary": {label: {k: _finite(v) for k, v in values.items()} for label, values in summary.items()},
        "images": [
            {"name": name, "metrics": {label: {k: _finite(v) for k, v in values.items()} for label, values in row.items()}}
            for name, row in zip(names, per_image, strict=True)
        ],
    }
    (folder / "metrics.json").write_text(json.dumps(document, indent=2), encoding="utf-8")


def summary_table(summary: dict[str, dict[str, float]], title: str) -> Table:
    """The rich table printed at the end: one row per metric, one column per model (fits 80 columns),
    the best value of each metric in bold green."""
    metrics = list(dict.fromkeys(name for values in summary.values() for name in values))
    table = Table(title=title, title_justify="left")
    table.add_column("metric", style="cyan", no_wrap=True)
    for label in summary:
        table.add_column(label, justify="right", overflow="fold", style="dim" if label == IDENTITY else None)
    for name in metrics:
        info = metric_info(name)
        known = [v[name] for v in summary.values() if v.get(name) is not None and not math.isnan(v[name])]
        best = (max if info.higher_is_better else min)(known) if known and len(summary) > 1 else None
        cells = []
        for values in summary.values():
            text = format_value(name, values.get(name))
            cells.append(f"[bold green]{text}[/]" if best is not None and values.get(name) == best else text)
        table.add_row(f"{info.title} {'↑' if info.higher_is_better else '↓'}", *cells)
    return table
