"""What every loss term sees (LossContext), and building the weighted terms a recipe names.

Loss arithmetic runs in float32 even when the networks run under autocast: SSIM-style terms compute
``E[x^2] - mu^2``, which cancels in bf16/fp16 (their gradients lose their direction, or turn NaN in fp16).
``WeightedLosses`` casts the context to float32 and turns autocast off around the terms; a term that runs a
network of its own (VGG) may run that forward under the caller's autocast again (``LossContext.network_autocast``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch
from torch import nn

from gan_retouch.errors import ConfigError
from gan_retouch.registry import LOSSES

DiscriminatorOutput = list[list[torch.Tensor]]  # per scale: intermediate features..., patch logits


@dataclass
class LossContext:
    """Everything a loss term may need for one generator step; images in [0, 1], NCHW."""

    input: torch.Tensor
    output: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor | None = None  # the data's defect mask [N,1,H,W], when the data has one
    pred_mask: torch.Tensor | None = None  # a multi-task generator's mask logits [N,1,H,W]
    fake: DiscriminatorOutput | None = None  # D(input, output), with gradients to the generator
    real: DiscriminatorOutput | None = None  # D(input, target), detached
    teacher_output: torch.Tensor | None = None  # distillation: the frozen teacher's output
    teacher_mask: torch.Tensor | None = None  # distillation: an edit-mask teacher's edit-map logits [N,1,H,W]
    student_features: dict[str, torch.Tensor] = field(default_factory=dict)  # adapted student features
    teacher_features: dict[str, torch.Tensor] = field(default_factory=dict)  # matching teacher features
    network_dtype: torch.dtype | None = None  # the autocast dtype of the network forwards (None = float32)

    def need(self, name: str, term: str) -> Any:
        """The field ``name``, or a ConfigError saying why the term ``term`` cannot run."""
        value = getattr(self, name)
        if value is None or (isinstance(value, dict) and not value):
            raise ConfigError(f"loss term {term!r} needs {name!r}, which this run does not provide")
        return value

    def in_float32(self, network_dtype: torch.dtype | None = None) -> LossContext:
        """A copy with every floating-point tensor in float32 (gradients flow through the casts)."""
        cast = {f.name: in_float32(getattr(self, f.name)) for f in fields(self) if f.name != "network_dtype"}
        return replace(self, **cast, network_dtype=network_dtype)

    def network_autocast(self):
        """Autocast as the engine ran the networks, for a term's own network forward (e.g. VGG features)."""
        device_type = self.output.device.type
        return torch.autocast(device_type, dtype=self.network_dtype or torch.float32,
                              enabled=self.network_dtype is not None)


def in_float32(value: Any) -> Any:
    """Floating-point tensors, also inside lists, tuples and dicts, as float32; anything else unchanged."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, (list, tuple)):
        return type(value)(in_float32(item) for item in value)
    if isinstance(value, dict):
        return {key: in_float32(item) for key, item in value.items()}
    return value


def ambient_autocast_dtype(device_type: str) -> torch.dtype | None:
    """The dtype autocast is running with on ``device_type`` right now, or None when it is off."""
    return torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else None


def full_precision(device_type: str):
    """A context that turns autocast off, for loss arithmetic (inputs must be float32 already)."""
    return torch.autocast(device_type, enabled=False)


class LossTerm(nn.Module):
    """Base class of registered loss terms: ``forward(ctx) -> scalar``."""

    needs_discriminator: bool = False  # the engine runs D on the fake output before this term
    needs_teacher: bool = False  # only valid under `gan-retouch distill`
    reads_pred_mask: bool = False  # trains a generator's mask logits (without such a term a mask head is unused)

    def __init__(self) -> None:
        """Explicit, so that terms without arguments reject unknown recipe arguments (the registry reads it)."""
        super().__init__()

    def forward(self, ctx: LossContext) -> torch.Tensor:
        raise NotImplementedError


class WeightedLosses(nn.Module):
    """The recipe's ``losses:`` mapping built into terms: label -> (term, weight)."""

    def __init__(self, spec: dict[str, dict[str, Any]]) -> None:
        super().__init__()
        self.terms = nn.ModuleDict()
        self.weights: dict[str, float] = {}
        for label, entry in spec.items():
            if not isinstance(entry, dict):
                raise ConfigError(f"losses.{label} must be a mapping like {{weight: 1.0}}, got {entry!r}")
            args = dict(entry)
            kind = args.pop("type", label)
            weight = args.pop("weight", 1.0)
            if not isinstance(weight, (int, float)) or isinstance(weight, bool):
                raise ConfigError(f"losses.{label}.weight must be a number, got {weight!r}")
            term = LOSSES.build(kind, **args)
            if not isinstance(term, LossTerm):
                raise ConfigError(f"loss {kind!r} is not a loss term that a recipe can weight")
            self.terms[label] = term
            self.weights[label] = float(weight)

    @property
    def needs_discriminator(self) -> bool:
        return any(t.needs_discriminator for t in self.terms.values())

    def forward(self, ctx: LossContext) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The weighted total and each term's unweighted value (for logging and the NaN guard), in float32
        whatever autocast the caller runs under (see the module docstring)."""
        device_type = ctx.output.device.type
        ctx = ctx.in_float32(ambient_autocast_dtype(device_type))
        with full_precision(device_type):
            values = {label: term(ctx) for label, term in self.terms.items()}
            total = sum(self.weights[label] * value for label, value in values.items())
            if not values:
                total = ctx.output.sum() * 0.0
        return total, values
