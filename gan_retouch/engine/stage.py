"""Stages of a run: what each trains with (options, losses, optimizers, schedules) and its stream of batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gan_retouch.config import Options, stage_options
from gan_retouch.data import build_dataset, build_loader
from gan_retouch.engine.distributed import DistInfo
from gan_retouch.engine.monitor import TimedBatches
from gan_retouch.engine.optim import build_optimizer, build_scheduler
from gan_retouch.engine.sampler import StreamSampler
from gan_retouch.losses.base import WeightedLosses


@dataclass(frozen=True)
class StagePlan:
    """One stage as the recipe declares it: the options in force and how many generator steps it lasts."""

    index: int
    name: str
    steps: int
    options: Options


def plan_stages(options: Options) -> list[StagePlan]:
    """The recipe's ``stages``, or one stage ``main`` of ``train.steps`` steps."""
    stages = options.get("stages") or []
    if not stages:
        return [StagePlan(0, "main", int(options["train"]["steps"]), options)]
    return [
        StagePlan(i, str(stage.get("name", f"stage{i + 1}")), int(stage["steps"]), stage_options(options, i))
        for i, stage in enumerate(stages)
    ]


def batch_stream(plan: StagePlan, seed: int, steps_done: int, dist: DistInfo, device: torch.device) -> TimedBatches:
    """The stage's training batches from a deterministic stream, fast-forwarded past ``steps_done`` steps; the
    iterator adds up the time spent waiting for them (the log's ``data_time``)."""
    data = plan.options["data"]
    dataset = build_dataset(data, "train", seed, face_width=plan.options["inference"].get("face_width") or None)
    d_steps = int(plan.options["train"]["d_steps"])
    sampler = StreamSampler(
        len(dataset), int(data["batch_size"]), seed=seed * 100 + plan.index, start_batch=steps_done * d_steps,
        rank=dist.rank, world_size=dist.world_size,
    )
    return TimedBatches(iter(build_loader(dataset, data, int(data["batch_size"]), sampler=sampler, device=device)))


class Optimization:
    """The losses, optimizers, learning-rate schedules and gradient scalers of one stage (fresh per stage)."""

    def __init__(self, plan: StagePlan, g_params: list[nn.Parameter], discriminator: nn.Module | None,
                 device: torch.device, use_scaler: bool) -> None:
        train = plan.options["train"]
        self.losses = WeightedLosses(plan.options["losses"]).to(device)
        self.optimizer_g = build_optimizer(g_params, train, float(train["lr"]))
        self.scheduler_g = build_scheduler(self.optimizer_g, train, plan.steps)
        self.trains_discriminator = discriminator is not None and self.losses.needs_discriminator
        self.optimizer_d = self.scheduler_d = None
        if self.trains_discriminator:
            lr_d = float(train["lr_d"] if train["lr_d"] is not None else train["lr"])
            self.optimizer_d = build_optimizer(discriminator.parameters(), train, lr_d)
            self.scheduler_d = build_scheduler(self.optimizer_d, train, plan.steps)
        self.scaler_g = torch.amp.GradScaler(device.type, enabled=use_scaler)
        self.scaler_d = torch.amp.GradScaler(device.type, enabled=use_scaler)

    @property
    def lr(self) -> float:
        """The generator learning rate the next step uses."""
        return float(self.optimizer_g.param_groups[0]["lr"])

    def step_schedules(self) -> None:
        self.scheduler_g.step()
        if self.scheduler_d is not None:
            self.scheduler_d.step()

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizers": {"g": self.optimizer_g.state_dict(),
                           "d": self.optimizer_d.state_dict() if self.optimizer_d else None},
            "schedulers": {"g": self.scheduler_g.state_dict(),
                           "d": self.scheduler_d.state_dict() if self.scheduler_d else None},
            "scalers": {"g": self.scaler_g.state_dict(), "d": self.scaler_d.state_dict()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer_g.load_state_dict(state["optimizers"]["g"])
        self.scheduler_g.load_state_dict(state["schedulers"]["g"])
        if self.optimizer_d is not None and state["optimizers"]["d"] is not None:
            self.optimizer_d.load_state_dict(state["optimizers"]["d"])
            self.scheduler_d.load_state_dict(state["schedulers"]["d"])
        for scaler, saved in ((self.scaler_g, state["scalers"]["g"]), (self.scaler_d, state["scalers"]["d"])):
            if saved:  # empty when saved without fp16 (bf16, off, CPU): an fp16 run then starts a fresh scale
                scaler.load_state_dict(saved)
