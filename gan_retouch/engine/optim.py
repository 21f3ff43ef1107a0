"""Optimizers (Adam with pix2pix defaults, AdamW) and learning-rate schedules."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

SCHEDULERS = ("constant", "linear", "cosine", "step")


def build_optimizer(params: Iterable[torch.nn.Parameter], train: dict[str, Any], lr: float) -> torch.optim.Optimizer:
    """Adam or AdamW with the recipe's betas and weight decay."""
    kind = train["optimizer"]  # adam | adamw, checked when options load
    betas = tuple(float(b) for b in train["betas"])
    optimizer_class = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
    return optimizer_class(list(params), lr=lr, betas=betas, weight_decay=float(train["weight_decay"]))


def lr_factor(train: dict[str, Any], steps: int):
    """The multiplier of the base learning rate at each step of a stage of ``steps`` steps."""
    kind = train["scheduler"]  # one of SCHEDULERS, checked when options load (and when a resume reads them back)
    if kind == "constant":
        return lambda step: 1.0
    if kind == "linear":  # pix2pix: constant, then linear decay to 0
        start = int(steps * float(train["decay_start"]))
        return lambda step: 1.0 if step < start else max(0.0, 1.0 - (step - start) / max(1, steps - start))
    if kind == "cosine":
        return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / max(1, steps)))
    size, gamma = int(train["step_size"]), float(train["gamma"])
    return lambda step: gamma ** (step // max(1, size))


def build_scheduler(optimizer: torch.optim.Optimizer, train: dict[str, Any], steps: int):
    """A LambdaLR following ``train.scheduler`` over one stage."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(train, steps))
