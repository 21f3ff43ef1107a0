"""The frozen teacher of a distillation run, and the module lookups and hooks that read its feature maps."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gan_retouch.engine.checkpoint import describe_network, load_generator
from gan_retouch.errors import CheckpointError, ConfigError


def addressable_names(model: nn.Module) -> list[str]:
    """Module names a recipe can pick (at most two levels deep, e.g. ``encoders.1``, ``blocks.3``)."""
    return [name for name, _ in model.named_modules() if name and name.count(".") <= 1]


def find_module(model: nn.Module, name: str, role: str) -> nn.Module:
    """The submodule ``name`` of ``model``; an unknown name lists the addressable ones."""
    modules = dict(model.named_modules())
    if not name or name not in modules:
        raise ConfigError(f"{role} has no module {name!r}. Available: {', '.join(addressable_names(model))} "
                          "(deeper names from named_modules() work too)")
    return modules[name]


def load_teacher(path: str | None) -> tuple[nn.Module, dict[str, Any]]:
    """The frozen teacher (eval, no gradients) from a training checkpoint, EMA weights when present; ``builtin``
    alone is the built-in teacher."""
    if not path:
        raise ConfigError("distill needs a teacher: give --teacher checkpoints/<run>/best.pt or builtin:teacher "
                          "(distill.teacher)")
    teacher, info = load_generator(path, use_ema=True, builtin="teacher")
    kind = info.get("kind")
    if kind != "train":
        described = {"distill": "a distillation checkpoint"}.get(
            kind, f"a checkpoint of `gan-retouch {kind}`" if kind else "a checkpoint with no run kind")
        raise CheckpointError(
            f"{info['path']} is {described} (generator {describe_network(info['generator'])}), not a teacher: "
            "give a checkpoint written by `gan-retouch train` (e.g. checkpoints/quickstart/best.pt)"
        )
    teacher.eval()
    teacher.requires_grad_(False)
    return teacher, info


def recorder(store: dict[str, torch.Tensor], name: str):
    """A forward hook that keeps the module's latest output in ``store[name]``."""

    def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
        store[name] = output[0] if isinstance(output, tuple) else output

    return hook
