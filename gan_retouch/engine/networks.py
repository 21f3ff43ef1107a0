"""Building the recipe's networks, checking its loss terms against them, and wrapping them for speed and DDP."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import gan_retouch.losses  # noqa: F401  (registers the loss terms)
import gan_retouch.nets  # noqa: F401  (registers the networks)
from gan_retouch.config import Options, stage_options
from gan_retouch.engine.distributed import DistInfo
from gan_retouch.engine.precision import Precision
from gan_retouch.errors import ConfigError
from gan_retouch.registry import DISCRIMINATORS, GENERATORS, LOSSES


def build_generator(entry: dict[str, Any]) -> nn.Module:
    """The generator a recipe names; arguments left over from another generator get a hint."""
    try:
        return GENERATORS.build(entry["name"], **entry.get("args", {}))
    except ConfigError as exc:
        raise ConfigError(
            f"{exc}. model.generator.args is {entry.get('args')}: arguments of another generator may be "
            "left over from a recipe; remove one with --set model.generator.args.NAME=null"
        ) from exc


def build_discriminator(entry: dict[str, Any]) -> nn.Module | None:
    """The discriminator a recipe names, or None for reconstruction-only training (``name: null``)."""
    if not entry.get("name"):
        return None
    return DISCRIMINATORS.build(entry["name"], **entry.get("args", {}))


def _term_class(label: str, entry: Any) -> type:
    return LOSSES.get(entry.get("type", label) if isinstance(entry, dict) else label)


def check_loss_terms(options: Options, has_discriminator: bool, has_teacher: bool) -> None:
    """Every loss term of every stage can run with these networks; checked before step 1."""
    specs = [options["losses"]] + [stage_options(options, i)["losses"] for i in range(len(options.get("stages") or []))]
    for spec in specs:
        for label, entry in spec.items():
            term = _term_class(label, entry)
            if term.needs_discriminator and not has_discriminator:
                raise ConfigError(
                    f"the loss term {label!r} is adversarial but model.discriminator.name is null; set a "
                    "discriminator (e.g. --set model.discriminator.name=patchgan) or remove the term"
                )
            if term.needs_teacher and not has_teacher:
                raise ConfigError(
                    f"the loss term {label!r} needs a teacher, which only `gan-retouch distill --teacher CKPT` "
                    f"provides; remove it from the recipe (--set losses.{label}=null) or run distill"
                )


def wrap(module: nn.Module, precision: Precision, dist: DistInfo, device: torch.device, sync_bn: bool) -> nn.Module:
    """channels_last, SyncBatchNorm + DDP under torchrun, torch.compile: as the options ask."""
    if precision.channels_last:
        module = module.to(memory_format=torch.channels_last)
    if dist.enabled:
        if sync_bn:
            if device.type != "cuda":
                raise ConfigError("train.sync_bn needs CUDA (SyncBatchNorm is GPU-only); set train.sync_bn=false")
            module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        module = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
    if precision.compile:
        module = torch.compile(module)
    return module
