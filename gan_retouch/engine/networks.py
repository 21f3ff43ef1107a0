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
from gan_retouch.nets.base import run_generator
from gan_retouch.registry import DISCRIMINATORS, GENERATORS, LOSSES

PROBE_SIDE = 64  # side of the dry run that finds parameters without gradient before DDP wraps the generator


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


def _loss_specs(options: Options) -> list[dict[str, Any]]:
    """The ``losses`` mapping of the run and of each of its stages."""
    return [options["losses"]] + [stage_options(options, i)["losses"] for i in range(len(options.get("stages") or []))]


def check_loss_terms(options: Options, has_discriminator: bool, has_teacher: bool) -> None:
    """Every loss term of every stage can run with these networks; checked before step 1."""
    for spec in _loss_specs(options):
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


def mask_trained_in_every_stage(options: Options) -> bool:
    """Whether every stage has a loss term that reads the generator's mask logits (``reads_pred_mask``)."""
    return all(
        any(entry is not None and _term_class(label, entry).reads_pred_mask for label, entry in spec.items())
        for spec in _loss_specs(options)
    )


def parameters_without_gradient(generator: nn.Module, device: torch.device, mask_trained: bool) -> list[str]:
    """Names of the generator's parameters that no output the loss terms read depends on (e.g. a mask head
    with no mask term). DDP must be told (``find_unused_parameters``) or it fails at step 2.

    Found by one dry forward/backward in eval mode (BatchNorm statistics untouched; a layer used in training is
    used in eval too) on a small fixed image, with the RNG restored afterwards, so training is unchanged.
    """
    named = [(name, p) for name, p in generator.named_parameters() if p.requires_grad]
    side = max(PROBE_SIDE, int(getattr(generator, "stride", 1)))
    image = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0)).to(device)
    mask = (image[:, :1] > 0.5).float() if getattr(generator, "takes_mask", False) else None
    was_training = generator.training
    generator.eval()
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.enable_grad():
            rgb, logits = run_generator(generator, image, mask)
            read = rgb.float().sum() + (logits.float().sum() if mask_trained and logits is not None else 0.0)
            gradients = torch.autograd.grad(read, [p for _, p in named], allow_unused=True)
    finally:
        generator.train(was_training)
    return [name for (name, _), gradient in zip(named, gradients, strict=True) if gradient is None]


def wrap(module: nn.Module, precision: Precision, dist: DistInfo, device: torch.device, sync_bn: bool,
         find_unused: bool = False) -> nn.Module:
    """channels_last, SyncBatchNorm, torch.compile, then DDP under torchrun: as the options ask.

    The inner module is compiled and DDP wraps the compiled one, as PyTorch's "Where to apply torch.compile?"
    recommends (torch.compile does not handle the DDP wrapper well). ``find_unused``: some parameters get no
    gradient in some step (see ``parameters_without_gradient``).
    """
    if precision.channels_last:
        module = module.to(memory_format=torch.channels_last)
    if dist.enabled and sync_bn:
        if device.type != "cuda":
            raise ConfigError("train.sync_bn needs CUDA (SyncBatchNorm is GPU-only); set train.sync_bn=false")
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if precision.compile:
        module = torch.compile(module)
    if dist.enabled:
        module = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None,
                                         find_unused_parameters=find_unused)
    return module
