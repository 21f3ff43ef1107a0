"""The training loop: GAN or pure reconstruction, stages, AMP, EMA, DDP, validation, safe checkpoints, resume.

One ``Trainer`` serves ``gan-retouch train`` and, with an ``Extension`` (teacher, adapters), ``gan-retouch
distill``. Every batch is drawn from a deterministic stream (see ``sampler.py``) and every piece of state is in
the checkpoint, so a run resumed at step k continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import json
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

import gan_retouch.losses  # noqa: F401  (registers the loss terms)
import gan_retouch.nets  # noqa: F401  (registers the networks)
from gan_retouch.config import Options, save_options, stage_options
from gan_retouch.console import console
from gan_retouch.data import build_dataset, build_loader
from gan_retouch.engine import distributed
from gan_retouch.engine.checkpoint import (
    describe_network,
    load_checkpoint,
    load_state_strict,
    save_checkpoint,
)
from gan_retouch.engine.monitor import GpuMonitor, RunLog
from gan_retouch.engine.optim import build_optimizer, build_scheduler
from gan_retouch.engine.precision import resolve_precision
from gan_retouch.engine.sampler import StreamSampler
from gan_retouch.engine.validation import Validator, is_better, resolve_lpips
from gan_retouch.errors import CheckpointError, ConfigError, GanRetouchError
from gan_retouch.losses.base import LossContext, WeightedLosses
from gan_retouch.nets.base import run_generator
from gan_retouch.registry import DISCRIMINATORS, GENERATORS, LOSSES
from gan_retouch.runtime import resolve_device, seed_everything

MAX_CONSECUTIVE_SKIPS = 20  # nan_policy=skip gives up after this many non-finite steps in a row


class TrainingStopped(GanRetouchError):
    """The run stopped early (Ctrl-C or a non-finite loss); the message says what was saved."""


class TrainingInterrupted(TrainingStopped):
    """Ctrl-C: a checkpoint was saved at a step boundary; exit status 130 like any interrupted command."""

    exit_code = 130


class Extension:
    """Hooks that turn the trainer into a distillation run (see ``gan_retouch.distill``); all optional."""

    kind: str = "distill"

    def trainable_modules(self) -> dict[str, nn.Module]:
        """Extra modules optimised with the generator and saved in checkpoints (e.g. feature adapters)."""
        return {}

    def attach(self, student: nn.Module, device: torch.device) -> None:
        """Called once with the plain generator on its device, before any DDP/compile wrapping."""

    def fill_context(self, ctx: LossContext, batch: dict[str, Any]) -> None:
        """Add teacher outputs and features to the loss context of one step."""

    def checkpoint_info(self) -> dict[str, Any]:
        return {}

    def on_finish(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        """The final report."""


@dataclass
class Stage:
    """One stage of training: its options, losses, optimizers and data stream."""

    index: int
    name: str
    steps: int
    options: Options
    losses: WeightedLosses
    optimizer_g: torch.optim.Optimizer
    scheduler_g: Any
    optimizer_d: torch.optim.Optimizer | None
    scheduler_d: Any
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler
    batches: Any = None
    step: int = 0  # steps done in this stage


@dataclass
class Window:
    """Running sums between two log records."""

    sums: dict[str, torch.Tensor] = field(default_factory=dict)
    steps: int = 0
    images: int = 0
    started: float = field(default_factory=time.perf_counter)

    def add(self, values: dict[str, torch.Tensor], images: int) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value.detach().float()
        self.steps += 1
        self.images += images


def _stage_list(options: Options) -> list[tuple[str, int]]:
    stages = options.get("stages") or []
    if not stages:
        return [("main", int(options["train"]["steps"]))]
    return [(str(stage.get("name", f"stage{i + 1}")), int(stage["steps"])) for i, stage in enumerate(stages)]


def _set_requires_grad(module: nn.Module | None, flag: bool) -> None:
    if module is not None:
        for parameter in module.parameters():
            parameter.requires_grad_(flag)


class Trainer:
    """Trains ``options["model"]`` with ``options["losses"]`` on ``options["data"]``; see module docstring."""

    def __init__(self, options: Options, extension: Extension | None = None) -> None:
        self.options = options
        self.extension = extension
        self.kind = extension.kind if extension else "train"
        self.dist = distributed.init_distributed(str(options["device"]))
        device = resolve_device(options["device"])
        if self.dist.enabled and device.type == "cuda":
            device = torch.device(f"cuda:{self.dist.local_rank}")
            torch.cuda.set_device(device)
        self.device = device
        seed_everything(int(options["seed"]))  # identical initial weights on every rank
        self.run_dir = Path(options["checkpoints_root"]) / str(options["name"])
        self.stage_plan = _stage_list(options)
        self.total_steps = sum(steps for _, steps in self.stage_plan)
        self.precision = resolve_precision(options["train"], device)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = bool(options["train"]["cudnn_benchmark"])

        self.g_entry = dict(options["model"]["generator"])
        try:
            self.generator_plain = GENERATORS.build(self.g_entry["name"], **self.g_entry.get("args", {})).to(device)
        except ConfigError as exc:
            raise ConfigError(
                f"{exc}. model.generator.args is {self.g_entry.get('args')}: arguments of another generator may be "
                "left over from a recipe; remove one with --set model.generator.args.NAME=null"
            ) from exc
        d_name = options["model"]["discriminator"]["name"]
        self.d_entry = dict(options["model"]["discriminator"]) if d_name else None
        self.discriminator_plain = (
            DISCRIMINATORS.build(d_name, **self.d_entry.get("args", {})).to(device) if d_name else None
        )
        self._check_losses_fit_model()
        if extension is not None:
            extension.attach(self.generator_plain, device)
        self.extra = nn.ModuleDict(extension.trainable_modules() if extension else {}).to(device)

        ema_decay = float(options["train"]["ema"])
        self.ema = (
            AveragedModel(self.generator_plain, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True)
            if ema_decay > 0
            else None
        )
        self.generator = self._wrap(self.generator_plain)
        self.discriminator = self._wrap(self.discriminator_plain) if self.discriminator_plain is not None else None

        self.step = 0
        self.stage_index = 0
        self.stage_step = 0
        self.best: dict[str, Any] = {"metric": options["val"]["metric"], "value": None, "step": None}
        self._resume_state: dict[str, Any] | None = None
        self._stop_requested = False
        self._consecutive_skips = 0
        self._step_lr = 0.0
        self.validator = self._build_validator()
        self.log = RunLog(self.run_dir, bool(options["train"]["tensorboard"])) if self.dist.is_main else None
        self.gpu = GpuMonitor(device) if self.dist.is_main else None
        self._prepare_run_folder()

    # ----------------------------------------------------------------- construction
    def _check_losses_fit_model(self) -> None:
        specs = [self.options["losses"]] + [
            stage_options(self.options, i)["losses"] for i in range(len(self.options.get("stages") or []))
        ]
        needs_d = any(
            getattr(LOSSES.get(entry.get("type", label) if isinstance(entry, dict) else label),
                    "needs_discriminator", False)
            for spec in specs for label, entry in spec.items()
        )
        if needs_d and self.discriminator_plain is None:
            raise ConfigError(
                "an adversarial loss term (gan / feature_matching) is in the recipe but model.discriminator.name is "
                "null; set a discriminator (e.g. --set model.discriminator.name=patchgan) or remove the term"
            )

    def _wrap(self, module: nn.Module) -> nn.Module:
        if self.precision.channels_last:
            module = module.to(memory_format=torch.channels_last)
        if self.dist.enabled:
            if self.options["train"]["sync_bn"]:
                if self.device.type != "cuda":
                    raise ConfigError("train.sync_bn needs CUDA (SyncBatchNorm is GPU-only); set train.sync_bn=false")
                module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
            ids = [self.device.index] if self.device.type == "cuda" else None
            module = DistributedDataParallel(module, device_ids=ids)
        if self.precision.compile:
            module = torch.compile(module)
        return module

    def _build_validator(self) -> Validator:
        data = self.options["data"]
        dataset = build_dataset(data, "val", int(self.options["seed"]))
        count = data.get("val_count")
        if count is not None and count < len(dataset):
            dataset = torch.utils.data.Subset(dataset, list(range(int(count))))
        lpips_model, self.lpips_reason = resolve_lpips(self.options["val"]["lpips"])
        batch_size = 4 if data["source"] == "synthetic" else 1
        return Validator(dataset, self.device, self.dist, batch_size, lpips_model)

    def _prepare_run_folder(self) -> None:
        resume = self.options["train"]["resume"]
        latest = self.run_dir / "latest.pt"
        if resume in (None, False, "", "none"):
            if latest.exists():
                raise ConfigError(
                    f"{self.run_dir} already holds a run (latest.pt). Continue it with --resume, or start a new run "
                    f"with --set name=<new name>; nothing was overwritten."
                )
        elif resume == "auto":
            if latest.exists():
                self._resume_state = load_checkpoint(latest)
        else:
            self._resume_state = load_checkpoint(Path(str(resume)))
        if self._resume_state is not None:
            self._restore_models(self._resume_state)
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_options(self.options, self.run_dir / "options.yaml")

    # ----------------------------------------------------------------- checkpoints
    def _restore_models(self, state: dict[str, Any]) -> None:
        source = state["path"]
        if state.get("kind") != self.kind:
            raise CheckpointError(f"{source} is a {state.get('kind')!r} checkpoint; this is a {self.kind!r} run")
        saved = state.get("generator") or {}
        if saved.get("name") != self.g_entry["name"] or saved.get("args", {}) != self.g_entry.get("args", {}):
            raise CheckpointError(
                f"{source} holds generator {describe_network(saved)}, but the options ask for "
                f"{describe_network(self.g_entry)}: resume with the run's own options.yaml "
                f"(--recipe {self.run_dir / 'options.yaml'}) or start a new run"
            )
        load_state_strict(self.generator_plain, saved["state_dict"], "generator", source)
        if self.discriminator_plain is not None:
            saved_d = state.get("discriminator")
            if not saved_d:
                raise CheckpointError(f"{source} has no discriminator, but the options ask for {self.d_entry['name']}")
            load_state_strict(self.discriminator_plain, saved_d["state_dict"], "discriminator", source)
        if self.ema is not None:
            if not state.get("ema_state"):
                raise CheckpointError(f"{source} was trained without EMA, but train.ema is on")
            self.ema.load_state_dict(state["ema_state"])
        for name, module in self.extra.items():
            load_state_strict(module, state["extension"][name], f"extension module {name}", source)
        self.step = int(state["step"])
        self.stage_index = int(state["stage"])
        self.stage_step = int(state["stage_step"])
        self.best = state.get("best", self.best)

    def _state(self, stage: Stage) -> dict[str, Any]:
        state: dict[str, Any] = {
            "kind": self.kind,
            "options": self.options,
            "generator": {**self.g_entry, "state_dict": self.generator_plain.state_dict()},
            "generator_ema": self.ema.module.state_dict() if self.ema is not None else None,
            "ema_state": self.ema.state_dict() if self.ema is not None else None,
            "discriminator": (
                {**self.d_entry, "state_dict": self.discriminator_plain.state_dict()}
                if self.discriminator_plain is not None
                else None
            ),
            "extension": {name: module.state_dict() for name, module in self.extra.items()},
            "extension_info": self.extension.checkpoint_info() if self.extension else {},
            "optimizers": {
                "g": stage.optimizer_g.state_dict(),
                "d": stage.optimizer_d.state_dict() if stage.optimizer_d else None,
            },
            "schedulers": {
                "g": stage.scheduler_g.state_dict(),
                "d": stage.scheduler_d.state_dict() if stage.scheduler_d else None,
            },
            "scalers": {"g": stage.scaler_g.state_dict(), "d": stage.scaler_d.state_dict()},
            "step": self.step,
            "stage": stage.index,
            "stage_step": stage.step,
            "best": self.best,
            "rng": {"torch": torch.get_rng_state(), "python": random.getstate()},
        }
        if self.device.type == "cuda":
            state["rng"]["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def save(self, stage: Stage, name: str = "latest.pt") -> Path | None:
        """Write a checkpoint atomically (rank 0 only)."""
        if not self.dist.is_main:
            return None
        return save_checkpoint(self._state(stage), self.run_dir / name)

    # ----------------------------------------------------------------- stages
    def _build_stage(self, index: int) -> Stage:
        name, steps = self.stage_plan[index]
        options = stage_options(self.options, index) if self.options.get("stages") else self.options
        train = options["train"]
        losses = WeightedLosses(options["losses"]).to(self.device)
        params_g = list(self.generator_plain.parameters()) + list(self.extra.parameters())
        optimizer_g = build_optimizer(params_g, train, float(train["lr"]))
        train_d = self.discriminator_plain is not None and losses.needs_discriminator
        lr_d = float(train["lr_d"] if train["lr_d"] is not None else train["lr"])
        optimizer_d = build_optimizer(self.discriminator_plain.parameters(), train, lr_d) if train_d else None
        stage = Stage(
            index=index,
            name=name,
            steps=steps,
            options=options,
            losses=losses,
            optimizer_g=optimizer_g,
            scheduler_g=build_scheduler(optimizer_g, train, steps),
            optimizer_d=optimizer_d,
            scheduler_d=build_scheduler(optimizer_d, train, steps) if optimizer_d else None,
            scaler_g=torch.amp.GradScaler(self.device.type, enabled=self.precision.use_scaler),
            scaler_d=torch.amp.GradScaler(self.device.type, enabled=self.precision.use_scaler),
        )
        if self._resume_state is not None and int(self._resume_state["stage"]) == index:
            state = self._resume_state
            stage.step = int(state["stage_step"])
            stage.optimizer_g.load_state_dict(state["optimizers"]["g"])
            stage.scheduler_g.load_state_dict(state["schedulers"]["g"])
            if stage.optimizer_d is not None and state["optimizers"]["d"] is not None:
                stage.optimizer_d.load_state_dict(state["optimizers"]["d"])
                stage.scheduler_d.load_state_dict(state["schedulers"]["d"])
            stage.scaler_g.load_state_dict(state["scalers"]["g"])
            stage.scaler_d.load_state_dict(state["scalers"]["d"])
            torch.set_rng_state(state["rng"]["torch"])
            random.setstate(state["rng"]["python"])
            if "cuda" in state["rng"] and self.device.type == "cuda":
                torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
            self._resume_state = None
        stage.batches = self._batches(options, index, stage.step)
        return stage

    def _batches(self, options: Options, stage_index: int, steps_done: int):
        data = options["data"]
        dataset = build_dataset(data, "train", int(self.options["seed"]))
        d_steps = int(options["train"]["d_steps"])
        sampler = StreamSampler(
            len(dataset),
            int(data["batch_size"]),
            seed=int(self.options["seed"]) * 100 + stage_index,
            start_batch=steps_done * d_steps,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        loader = build_loader(dataset, data, int(data["batch_size"]), sampler=sampler, device=self.device)
        return iter(loader)

    # ----------------------------------------------------------------- one step
    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        moved = {}
        for key, value in batch.items():
            if isinstance(value, torch.Tensor):
                value = value.to(self.device, non_blocking=True)
                if self.precision.channels_last and value.dim() == 4:
                    value = value.contiguous(memory_format=torch.channels_last)
            moved[key] = value
        return moved

    def _discriminator_step(self, stage: Stage, batch: dict[str, Any], fake: torch.Tensor) -> torch.Tensor:
        with self.precision.autocast(self.device):
            real_out = self.discriminator(batch["input"], batch["target"])
            fake_out = self.discriminator(batch["input"], fake.detach())
            loss = sum(
                term.discriminator_loss(real_out, fake_out)
                for term in stage.losses.terms.values()
                if hasattr(term, "discriminator_loss")
            )
        if not torch.isfinite(loss.detach()).item():
            self._non_finite(stage, {"discriminator": loss.detach()})
            return loss.detach()
        stage.optimizer_d.zero_grad(set_to_none=True)
        stage.scaler_d.scale(loss).backward()
        self._clip(stage.scaler_d, stage.optimizer_d, self.discriminator_plain.parameters())
        stage.scaler_d.step(stage.optimizer_d)
        stage.scaler_d.update()
        return loss.detach()

    def _clip(self, scaler: torch.amp.GradScaler, optimizer: torch.optim.Optimizer, params) -> None:
        clip = float(self.options["train"]["grad_clip"])
        if clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(list(params), clip)

    def _non_finite(self, stage: Stage, values: dict[str, torch.Tensor]) -> None:
        bad = [name for name, value in values.items() if not torch.isfinite(value).all()]
        for buffer, saved in self._buffers_before_step:
            buffer.copy_(saved)
        latest = self.run_dir / "latest.pt"
        last_good = str(latest) if latest.exists() else "none saved yet"
        policy = self.options["train"]["nan_policy"]
        if policy == "skip":
            self._consecutive_skips += 1
            if self._consecutive_skips <= MAX_CONSECUTIVE_SKIPS:
                console.print(f"[yellow]step {self.step + 1}: non-finite {', '.join(bad)}; step skipped[/]")
                return
        raise TrainingStopped(
            f"non-finite loss at step {self.step + 1} (stage {stage.name}) in term(s) {', '.join(bad)}; "
            f"no weights were updated with it and nothing was saved. Last good checkpoint: {last_good}. "
            "Lower train.lr, enable train.grad_clip, or set train.nan_policy=skip."
        )

    def _snapshot_buffers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Copies of the BatchNorm running statistics, restored when a step turns out non-finite."""
        modules = [m for m in (self.generator_plain, self.discriminator_plain) if m is not None]
        return [(buffer, buffer.detach().clone()) for module in modules for buffer in module.buffers()]

    def _train_step(self, stage: Stage) -> tuple[dict[str, torch.Tensor], int]:
        self._buffers_before_step = self._snapshot_buffers()
        d_steps = int(stage.options["train"]["d_steps"])
        train_d = stage.optimizer_d is not None
        values: dict[str, torch.Tensor] = {}
        batch: dict[str, Any] = {}
        output = pred_mask = None
        for index in range(d_steps):
            batch = self._to_device(next(stage.batches))
            last = index == d_steps - 1
            if last:
                with self.precision.autocast(self.device):
                    output, pred_mask = run_generator(self.generator, batch["input"], batch.get("mask"))
            elif train_d:
                with torch.no_grad(), self.precision.autocast(self.device):
                    output = run_generator(self.generator_plain, batch["input"], batch.get("mask"))[0]
            if train_d:
                values["D"] = self._discriminator_step(stage, batch, output)

        _set_requires_grad(self.discriminator_plain, False)
        try:
            ctx = LossContext(
                input=batch["input"], output=output, target=batch["target"],
                mask=batch.get("mask"), pred_mask=pred_mask,
            )
            with self.precision.autocast(self.device):
                if stage.losses.needs_discriminator:
                    ctx.fake = self.discriminator_plain(batch["input"], output)
                    with torch.no_grad():
                        ctx.real = [[f.detach() for f in scale]
                                    for scale in self.discriminator_plain(batch["input"], batch["target"])]
                if self.extension is not None:
                    self.extension.fill_context(ctx, batch)
                total, terms = stage.losses(ctx)
        finally:
            _set_requires_grad(self.discriminator_plain, True)
        values.update({name: value.detach() for name, value in terms.items()})
        values["G"] = total.detach()
        if not torch.isfinite(torch.stack([v.float() for v in values.values()])).all().item():
            self._non_finite(stage, values)
            return {}, 0
        self._consecutive_skips = 0
        stage.optimizer_g.zero_grad(set_to_none=True)
        stage.scaler_g.scale(total).backward()
        distributed.average_gradients(self.extra, self.dist)  # the extension's modules are not DDP-wrapped
        params = list(self.generator_plain.parameters()) + list(self.extra.parameters())
        self._clip(stage.scaler_g, stage.optimizer_g, params)
        stage.scaler_g.step(stage.optimizer_g)
        stage.scaler_g.update()
        if self.ema is not None:
            self.ema.update_parameters(self.generator_plain)
        return values, int(batch["input"].shape[0])

    # ----------------------------------------------------------------- the loop
    def eval_generator(self) -> nn.Module:
        """The network used for validation and test: the EMA copy when EMA is on."""
        return self.ema.module if self.ema is not None else self.generator_plain

    def validate(self, model: nn.Module | Any) -> dict[str, float]:
        """Mean PSNR / SSIM / MS-SSIM (and LPIPS when available) of any model on the validation set."""
        return self.validator.evaluate(model)

    def _validate_and_report(self, stage: Stage) -> dict[str, float]:
        distributed.sync_buffers([self.generator_plain, self.discriminator_plain, self.eval_generator()], self.dist)
        scores = self.validate(self.eval_generator())
        identity = self.validator.identity()
        if not self.dist.is_main:
            return scores
        self.validator.save_samples(
            self.eval_generator(), int(self.options["val"]["samples"]),
            self.run_dir / "samples" / f"step_{self.step:07d}.png", self.run_dir / "web",
            title=f"{self.options['name']}: validation at step {self.step}",
            summary={"identity": identity, "model": scores},
        )
        metric = self.options["val"]["metric"]
        if metric not in scores:
            raise ConfigError(f"val.metric {metric!r} is not measured here; measured: {', '.join(scores)}"
                              + (f" (LPIPS: {self.lpips_reason})" if metric == "lpips" else ""))
        record = {"step": self.step, "stage": stage.name, **{f"val_{k}": v for k, v in scores.items()},
                  **{f"identity_{k}": v for k, v in identity.items()}}
        self.log.write(record)
        table = Table(title=f"validation at step {self.step}", title_justify="left")
        table.add_column("")
        for name in scores:
            table.add_column(name, justify="right")
        table.add_row("model", *(f"{v:.4f}" for v in scores.values()))
        table.add_row("identity", *(f"{identity.get(k, float('nan')):.4f}" for k in scores))
        console.print(table)
        if is_better(metric, scores[metric], self.best["value"]):
            self.best = {"metric": metric, "value": scores[metric], "step": self.step}
            self.save(stage, "best.pt")
        return scores

    def _log(self, stage: Stage, window: Window) -> str:
        values = {k: v / max(1, window.steps) for k, v in window.sums.items()}
        keys = list(values)
        if keys:
            stacked = distributed.all_reduce_mean(torch.stack([values[k] for k in keys]), self.dist)
            values = {k: float(stacked[i]) for i, k in enumerate(keys)}
        elapsed = time.perf_counter() - window.started
        if not self.dist.is_main:
            return ""
        record = {
            "step": self.step,
            "stage": stage.name,
            **values,
            "lr": self._step_lr,  # the learning rate the last step used
            "sec_per_step": elapsed / max(1, window.steps),
            "images_per_sec": window.images * self.dist.world_size / max(elapsed, 1e-9),
            **(self.gpu.figures() if self.gpu else {}),
        }
        self.log.write(record)
        main = ["G", "D"] + [k for k in values if k not in ("G", "D")][:2]
        return "  ".join(f"{k} {values[k]:.4g}" for k in main if k in values) + f"  {record['images_per_sec']:.1f} img/s"

    def _install_interrupt_handler(self):
        def request_stop(signum, frame):
            if self._stop_requested:
                raise KeyboardInterrupt
            self._stop_requested = True
            console.print("[yellow]Ctrl-C: saving a checkpoint at the end of this step (Ctrl-C again to abort)[/]")

        try:
            return signal.signal(signal.SIGINT, request_stop)
        except ValueError:  # not the main thread
            return None

    def _should_stop(self) -> bool:
        flag = torch.tensor([1.0 if self._stop_requested else 0.0], device=self.device)
        return bool(distributed.all_reduce_sum(flag, self.dist).item() > 0)

    def fit(self) -> dict[str, float]:
        """Run every remaining stage, validate, save, and return the final validation metrics."""
        previous_handler = self._install_interrupt_handler()
        train = self.options["train"]
        val_every, log_every = int(self.options["val"]["every"]), int(train["log_every"])
        save_every, keep_every = int(train["save_every"]), int(train["keep_every"])
        stage = None
        progress = Progress(
            TextColumn("[bold]{task.fields[stage]}[/]"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
            console=console, disable=not self.dist.is_main, transient=False,
        )
        try:
            with progress:
                task = progress.add_task("train", total=self.total_steps, completed=self.step, stage="", info="")
                for index in range(self.stage_index, len(self.stage_plan)):
                    stage = self._build_stage(index)
                    self.stage_index = index
                    window = Window()
                    progress.update(task, stage=f"{self.kind} {stage.name} ({index + 1}/{len(self.stage_plan)})")
                    while stage.step < stage.steps:
                        self._step_lr = stage.optimizer_g.param_groups[0]["lr"]
                        values, images = self._train_step(stage)
                        stage.scheduler_g.step()
                        if stage.scheduler_d is not None:
                            stage.scheduler_d.step()
                        self.step += 1
                        stage.step += 1
                        if images:
                            window.add(values, images)
                        progress.update(task, completed=self.step)
                        if self.step % log_every == 0 or stage.step == stage.steps:
                            info = self._log(stage, window)
                            progress.update(task, info=info)
                            if self.dist.is_main and not console.is_terminal:  # no live bar in logs: one line
                                console.print(f"step {self.step}/{self.total_steps} ({stage.name}) {info}")
                            window = Window()
                        if val_every and self.step % val_every == 0 and stage.step < stage.steps:
                            self._validate_and_report(stage)
                        if save_every and self.step % save_every == 0:
                            self.save(stage)
                        if keep_every and self.step % keep_every == 0:
                            self.save(stage, f"step_{self.step}.pt")
                        check = self.dist.enabled and self.step % log_every == 0
                        if (check and self._should_stop()) or (not self.dist.enabled and self._stop_requested):
                            path = self.save(stage)
                            raise TrainingInterrupted(
                                f"interrupted at step {self.step}; saved {path or 'on rank 0'}. "
                                "Continue with the same command plus --resume."
                            )
                    self.save(stage)
            if stage is None:
                raise ConfigError(f"{self.run_dir} is already complete ({self.step} steps); nothing to train")
            scores = self._validate_and_report(stage)
            identity = self.validator.identity()
            final = {**scores, **{f"identity_{k}": v for k, v in identity.items()}}
            if self.dist.is_main:
                self._summary(final)
                if self.extension is not None:
                    self.extension.on_finish(self, final)
            return final
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
            if self.log is not None:
                self.log.close()

    def _summary(self, final: dict[str, float]) -> None:
        gain = final["psnr"] - final["identity_psnr"]
        console.print(
            f"[bold]done[/]: {self.step} steps. Validation PSNR {final['psnr']:.2f} dB vs identity "
            f"{final['identity_psnr']:.2f} dB ([{'green' if gain > 0 else 'red'}]{gain:+.2f} dB[/]); "
            f"SSIM {final['ssim']:.4f} vs {final['identity_ssim']:.4f}. Run folder: {self.run_dir}"
        )
        (self.run_dir / "metrics.json").write_text(json.dumps({"step": self.step, **final}, indent=2))

