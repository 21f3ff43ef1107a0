"""The model of a training run: networks, EMA, the stage's optimization, one training step, and its state.

``RetouchModel`` owns everything that changes when a step runs; ``TrainingLoop`` (loop.py) decides when steps,
validations and saves happen. Distillation subclasses it (``gan_retouch.distill``) through two documented hooks:
``trainable_extras`` (modules trained with the generator, e.g. adapters) and ``add_teacher_context``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from gan_retouch.config import Options, check_unused_inference
from gan_retouch.console import console
from gan_retouch.engine import distributed
from gan_retouch.engine.checkpoint import describe_network, load_state_strict
from gan_retouch.engine.distributed import DistInfo
from gan_retouch.engine.ema import GeneratorEMA
from gan_retouch.engine.init_weights import initialise, resolve_init_path
from gan_retouch.engine.networks import (
    build_discriminator,
    build_generator,
    check_loss_terms,
    mask_trained_in_every_stage,
    parameters_without_gradient,
    wrap,
)
from gan_retouch.engine.precision import Precision
from gan_retouch.engine.stage import Optimization, StagePlan
from gan_retouch.errors import CheckpointError
from gan_retouch.inference.plan import MODEL_FIELDS, training_plan
from gan_retouch.losses.adversarial import GANLoss
from gan_retouch.losses.base import LossContext, full_precision, in_float32
from gan_retouch.nets.base import run_generator


class NonFiniteStep(Exception):
    """A step produced a non-finite loss; nothing was updated with it. ``terms`` names the culprits.

    Under DDP every rank raises it together (``agree_finite``), so no rank runs a collective the others skip.
    """

    def __init__(self, terms: list[str]) -> None:
        super().__init__(", ".join(terms))
        self.terms = terms


class RetouchModel:
    """Generator (+ discriminator, EMA) trained with the recipe's losses; see the module docstring."""

    kind: ClassVar[str] = "train"  # written into checkpoints; a run resumes only from its own kind
    provides_teacher: ClassVar[bool] = False  # whether loss terms that need a teacher can run
    builtin_role: ClassVar[str] = "teacher"  # the built-in model `--init builtin` names: train makes teachers

    def __init__(self, options: Options, device: torch.device, dist: DistInfo, precision: Precision) -> None:
        self.device, self.dist, self.precision = device, dist, precision
        for part in ("generator", "discriminator"):
            resolve_init_path(options["model"][part], self.builtin_role)
        self.g_entry = dict(options["model"]["generator"])
        check_unused_inference(options, "train", MODEL_FIELDS, "training saves the plan's model fields; the "
                               "commands that run the model set the rest")
        self.inference_plan = training_plan(options)  # how the network runs at inference: saved in checkpoints
        self.d_entry = dict(options["model"]["discriminator"])
        self.generator = build_generator(self.g_entry).to(device)
        self.discriminator = build_discriminator(self.d_entry)
        if self.discriminator is not None:
            self.discriminator.to(device)
        check_loss_terms(options, self.discriminator is not None, self.provides_teacher)
        initialise(self.generator, self.discriminator, options["model"], announce=dist.is_main)
        decay = float(options["train"]["ema"])
        self.ema = GeneratorEMA(self.generator, decay) if decay > 0 else None
        sync_bn = bool(options["train"]["sync_bn"])
        find_unused = dist.enabled and self._has_parameters_without_gradient(options)
        self.generator_wrapped = wrap(self.generator, precision, dist, device, sync_bn, find_unused)
        self.discriminator_wrapped = (wrap(self.discriminator, precision, dist, device, sync_bn)
                                      if self.discriminator is not None else None)
        self.extras = nn.ModuleDict()  # filled by subclasses through trainable_extras(), before any stage starts
        self.optimization: Optimization | None = None
        self.grad_clip = float(options["train"]["grad_clip"])

    def _has_parameters_without_gradient(self, options: Options) -> bool:
        """Under DDP: whether some generator parameters get no gradient from these loss terms (then DDP must
        look for unused parameters each step, or it fails at step 2); says so on rank 0."""
        unused = parameters_without_gradient(self.generator, self.device, mask_trained_in_every_stage(options))
        if unused and self.dist.is_main:
            console.print(f"DDP: {len(unused)} generator parameters get no gradient from these loss terms "
                          f"({', '.join(unused[:3])}{', ...' if len(unused) > 3 else ''}; a mask head without a "
                          "mask term?), so DDP runs with find_unused_parameters=True (a little slower)")
        return bool(unused)

    # ----------------------------------------------------------------- hooks for subclasses
    def trainable_extras(self) -> dict[str, nn.Module]:
        """Modules optimised with the generator and saved in checkpoints (distillation adapters); none here."""
        return {}

    def add_teacher_context(self, ctx: LossContext, batch: dict[str, Any]) -> None:
        """Fill the teacher fields of the loss context (distillation); nothing here."""

    # ----------------------------------------------------------------- stages
    def start_stage(self, plan: StagePlan) -> None:
        """Fresh losses, optimizers, schedules and scalers for ``plan`` (the extras are registered first)."""
        self.extras.update(self.trainable_extras())
        self.extras.to(self.device)
        params = list(self.generator.parameters()) + list(self.extras.parameters())
        self.optimization = Optimization(plan, params, self.discriminator, self.device, self.precision.use_scaler)
        self.d_steps = int(plan.options["train"]["d_steps"])

    def eval_generator(self) -> nn.Module:
        """The network used for validation and test: the EMA copy when EMA is on."""
        return self.ema.module if self.ema is not None else self.generator

    # ----------------------------------------------------------------- one step
    def to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        moved = {}
        for key, value in batch.items():
            if isinstance(value, torch.Tensor):
                value = value.to(self.device, non_blocking=True)
                if self.precision.channels_last and value.dim() == 4:
                    value = value.contiguous(memory_format=torch.channels_last)
            moved[key] = value
        return moved

    def train_step(self, batches: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """One generator step after ``len(batches)`` discriminator steps; returns the detached loss values.

        Raises NonFiniteStep (weights and BatchNorm statistics untouched) when a loss is not finite.
        """
        opt = self.optimization
        saved_buffers = self._snapshot_buffers()
        values: dict[str, torch.Tensor] = {}
        try:
            for index, raw in enumerate(batches):
                batch = self.to_device(raw)
                if index < len(batches) - 1:
                    if opt.trains_discriminator:
                        with torch.no_grad(), self.precision.autocast(self.device):
                            fake = run_generator(self.generator_wrapped, batch["input"], batch.get("mask"))[0]
                        values["D"] = self._discriminator_step(batch, fake)
                    continue
                with self.precision.autocast(self.device):
                    output, pred_mask = run_generator(self.generator_wrapped, batch["input"], batch.get("mask"))
                if opt.trains_discriminator:
                    values["D"] = self._discriminator_step(batch, output)
                values.update(self._generator_step(batch, output, pred_mask))
        except NonFiniteStep:
            for buffer, saved in saved_buffers:
                buffer.copy_(saved)
            raise
        if self.ema is not None:
            self.ema.update_parameters(self.generator)
        return values

    def _discriminator_step(self, batch: dict[str, Any], fake: torch.Tensor) -> torch.Tensor:
        opt = self.optimization
        with self.precision.autocast(self.device):
            real_out = self.discriminator_wrapped(batch["input"], batch["target"])
            fake_out = self.discriminator_wrapped(batch["input"], fake.detach())
        with full_precision(self.device.type):  # the loss arithmetic in float32, like the generator's terms
            real_out, fake_out = in_float32(real_out), in_float32(fake_out)
            loss = sum(term.discriminator_loss(real_out, fake_out)
                       for term in opt.losses.terms.values() if isinstance(term, GANLoss))
        self.agree_finite({"discriminator": loss})
        opt.optimizer_d.zero_grad(set_to_none=True)
        opt.scaler_d.scale(loss).backward()
        self._clip(opt.scaler_d, opt.optimizer_d, self.discriminator.parameters())
        opt.scaler_d.step(opt.optimizer_d)
        opt.scaler_d.update()
        return loss.detach()

    def _generator_step(self, batch: dict[str, Any], output: torch.Tensor,
                        pred_mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
        opt = self.optimization
        ctx = LossContext(input=batch["input"], output=output, target=batch["target"],
                          mask=batch.get("mask"), pred_mask=pred_mask)
        with self.precision.autocast(self.device):
            if opt.losses.needs_discriminator:
                # D is frozen in this pass, so it runs unwrapped: DDP has no gradients of D to reduce here.
                self.discriminator.requires_grad_(False)
                try:
                    ctx.fake = self.discriminator(batch["input"], output)
                    with torch.no_grad():
                        ctx.real = [[f.detach() for f in scale]
                                    for scale in self.discriminator(batch["input"], batch["target"])]
                finally:
                    self.discriminator.requires_grad_(True)
            self.add_teacher_context(ctx, batch)
            total, terms = opt.losses(ctx)
        values = {name: value.detach() for name, value in terms.items()}
        values["G"] = total.detach()
        self.agree_finite(values)
        opt.optimizer_g.zero_grad(set_to_none=True)
        opt.scaler_g.scale(total).backward()
        distributed.average_gradients(self.extras, self.dist)  # the extras are not DDP-wrapped
        self._clip(opt.scaler_g, opt.optimizer_g, [*self.generator.parameters(), *self.extras.parameters()])
        opt.scaler_g.step(opt.optimizer_g)
        opt.scaler_g.update()
        return values

    def agree_finite(self, values: dict[str, torch.Tensor]) -> None:
        """Raise NonFiniteStep on every rank when any value is not finite on any rank, before any backward.

        One all-reduce of one small tensor (ranks x values) and one host sync per optimizer update, instead of
        one ``.item()`` per loss term; the culprits are named with the ranks they came from under DDP.
        """
        names = list(values)
        flags = torch.zeros(self.dist.world_size, len(names), device=self.device)
        flags[self.dist.rank] = torch.stack([~torch.isfinite(v.detach()).all() for v in values.values()]).float()
        flags = distributed.all_reduce_sum(flags, self.dist).tolist()
        bad = []
        for index, name in enumerate(names):
            ranks = [rank for rank, row in enumerate(flags) if row[index] > 0]
            if ranks:
                bad.append(name if not self.dist.enabled else f"{name} (rank {', '.join(map(str, ranks))})")
        if bad:
            raise NonFiniteStep(bad)

    def _clip(self, scaler: torch.amp.GradScaler, optimizer: torch.optim.Optimizer, params) -> None:
        if self.grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(list(params), self.grad_clip)

    def _snapshot_buffers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Copies of the BatchNorm running statistics, restored when a step turns out non-finite."""
        modules = [m for m in (self.generator, self.discriminator) if m is not None]
        return [(buffer, buffer.detach().clone()) for module in modules for buffer in module.buffers()]

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs from the model: networks, EMA, extras, optimization, RNG."""
        state: dict[str, Any] = {
            "kind": self.kind,
            "generator": {**self.g_entry, "state_dict": self.generator.state_dict()},
            "inference": self.inference_plan.to_dict(),
            "generator_ema": self.ema.module.state_dict() if self.ema is not None else None,
            "ema_state": self.ema.state_dict() if self.ema is not None else None,
            "discriminator": ({**self.d_entry, "state_dict": self.discriminator.state_dict()}
                              if self.discriminator is not None else None),
            "extension": {name: module.state_dict() for name, module in self.extras.items()},
            **self.optimization.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "python": list(random.getstate())},
        }
        if self.device.type == "cuda":
            state["rng"]["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_state_dict(self, state: dict[str, Any], load_optimization: bool = True) -> None:
        """Restore a checkpoint of the same kind and architecture (the current stage must have started)."""
        source = state.get("path", "the checkpoint")
        if state.get("kind") != self.kind:
            raise CheckpointError(f"{source} was written by `gan-retouch {state.get('kind') or 'unknown'}`; this is a "
                                  f"`gan-retouch {self.kind}` run: resume it with the command that wrote it")
        saved = state.get("generator") or {}
        if saved.get("name") != self.g_entry["name"] or saved.get("args", {}) != self.g_entry.get("args", {}):
            saved_options = Path(source).parent / "options.yaml"
            how = (f"--recipe {saved_options}" if saved_options.is_file()
                   else f"--set model.generator.args... matching {describe_network(saved)}")
            raise CheckpointError(
                f"{source} holds generator {describe_network(saved)}, but the options ask for "
                f"{describe_network(self.g_entry)}: resume with the options the run was started with ({how}) "
                "or start a new run"
            )
        load_state_strict(self.generator, saved["state_dict"], "generator", source)
        if self.discriminator is not None:
            if not state.get("discriminator"):
                raise CheckpointError(f"{source} has no discriminator, but the options ask for {self.d_entry['name']}")
            load_state_strict(self.discriminator, state["discriminator"]["state_dict"], "discriminator", source)
        if self.ema is not None:
            if not state.get("ema_state"):
                raise CheckpointError(f"{source} was trained without EMA, but train.ema is on")
            self.ema.load_state_dict(state["ema_state"])
        for name, module in self.extras.items():
            load_state_strict(module, state["extension"][name], f"extension module {name}", source)
        if load_optimization:
            self.optimization.load_state_dict(state)
            torch.set_rng_state(state["rng"]["torch"])
            version, internal, gauss = state["rng"]["python"]
            random.setstate((version, tuple(internal), gauss))
            if "cuda" in state["rng"] and self.device.type == "cuda":
                torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
