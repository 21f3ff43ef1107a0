"""Scoring the pairs of `gan-retouch test` one at a time at full resolution, each photo streamed.

Per pair the memory holds its decoded target (uint8), one float copy of its input (what the networks run on),
the float mask when it has one, and one model's output at a time; the metrics, heatmaps and PNG files are
computed band by band from them (``evaluate.bands``, ``evaluate.streamed``), and every file is written once.
Under 40 bytes per pixel at the peak instead of the 200 of whole-image metrics (benchmarks/bench_test_memory.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn

from gan_retouch.console import console
from gan_retouch.evaluate.bands import Pixels, save_heatmap, save_pixels
from gan_retouch.evaluate.page import PageRow
from gan_retouch.evaluate.streamed import streamed_metrics
from gan_retouch.evaluate.tables import IDENTITY
from gan_retouch.inference.run import run_plan

Scores = dict[str, dict[str, float]]  # model label -> metric -> value, for one pair


def slug(text: str) -> str:
    """A file-name-safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


@dataclass
class Scored:
    """One scored pair: its position in the split, its page row and its metrics."""

    index: int
    row: PageRow
    metrics: Scores


def pair_pixels(dataset: Any, index: int, device: torch.device) -> tuple[str, Pixels, Pixels, Pixels | None]:
    """``(name, input, target, mask)`` of pair ``index``: the input and mask as float on ``device`` (built band by
    band), the target as decoded (its bands converted where they are read)."""
    load = getattr(dataset, "load_pixels", None)
    item, convert = load(index) if load is not None else (dataset[index], lambda key, part: part)
    name = str(item.get("name", f"{index:04d}"))
    source = Pixels(item.pop("input"), partial(convert, "input"), device).whole()[0]
    target = Pixels(item.pop("target"), partial(convert, "target"), device)
    raw_mask = item.pop("mask", None)
    mask = Pixels(Pixels(raw_mask, partial(convert, "mask"), device).whole()[0]) if raw_mask is not None else None
    return name, Pixels(source), target, mask


@torch.no_grad()
def score_pair(dataset: Any, index: int, models: list[Any], settings: dict[str, Any], device: torch.device,
               lpips_model: nn.Module | None, folder: Path) -> Scored:
    """Run every model on pair ``index``, write its page images into ``folder`` and return its scores."""
    name, source, target, mask = pair_pixels(dataset, index, device)
    stem = f"images/{index:04d}_{slug(Path(name).stem)}"
    row = PageRow(name=name, input=f"{stem}_input.png", target=f"{stem}_target.png")
    save_pixels(folder / row.input, source)
    save_pixels(folder / row.target, target)
    metrics: Scores = {}
    for model in [None, *models]:
        label = IDENTITY if model is None else model.label
        if model is None:
            output = source
        else:
            images = source.data[None]
            output = Pixels(run_plan(model.plan, model.network, images, mask.data[None] if mask is not None else None)[0])
        metrics[label] = streamed_metrics(output, target, mask, lpips_model, settings["y_channel"])
        row.diffs[label] = f"{stem}_diff_{slug(label)}.png"
        save_heatmap(folder / row.diffs[label], output, target, settings["diff_gain"])
        if model is not None:
            row.outputs[label] = f"{stem}_{slug(label)}.png"
            save_pixels(folder / row.outputs[label], output)
        del output  # one model's output at a time
    row.metrics = metrics
    return Scored(index, row, metrics)


def score_pairs(dataset: Any, indices: list[int], models: list[Any], settings: dict[str, Any],
                device: torch.device, lpips_model: nn.Module | None, folder: Path) -> list[Scored]:
    """``score_pair`` for each of ``indices`` (this process's share of the split), with a progress bar."""
    columns = [TextColumn("[bold]scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=True) as progress:
        return [score_pair(dataset, index, models, settings, device, lpips_model, folder)
                for index in progress.track(indices, description="scoring")]
