"""The contract every generator keeps: [0, 1] in, [0, 1] out, any size, optional residual output."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gan_retouch.imaging import SIGNED, UNIT, to_signed, to_unit


class Generator(nn.Module):
    """Base class of the registered generators.

    Subclasses build ``self.body`` style layers and implement ``forward_padded(x)``, which gets the input in
    the network's own ``value_range`` with H and W divisible by ``stride`` and returns the image in that range
    (or ``(image, mask_logits)`` when ``has_mask_head``). This class pads and crops back, converts ranges and,
    when ``residual`` is on, adds the input: ``out = x + f(x)`` (the subclass zero-initialises its last layer
    and skips its output activation, see ``residual_head``), so a fresh network is exactly the identity.
    """

    value_range: tuple[float, float] = SIGNED  # the range the layers work in
    stride: int = 1  # H and W are padded to a multiple of this
    has_mask_head: bool = False  # forward returns (rgb, mask_logits)
    takes_mask: bool = False  # forward uses the mask argument

    def __init__(self, residual: bool = False) -> None:
        super().__init__()
        self.residual = residual

    def forward_padded(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        raise NotImplementedError

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        height, width = x.shape[-2:]
        pad_h = (-height) % self.stride
        pad_w = (-width) % self.stride
        inside = x
        if pad_h or pad_w:
            inside = F.pad(inside, (0, pad_w, 0, pad_h), mode="replicate")
            if mask is not None:
                mask = F.pad(mask, (0, pad_w, 0, pad_h), mode="replicate")
        if self.value_range == SIGNED:
            inside = to_signed(inside)
        result = self.forward_padded(inside, mask)
        rgb, mask_logits = result if isinstance(result, tuple) else (result, None)
        if self.residual:
            rgb = inside + rgb
        if self.value_range == SIGNED:
            rgb = to_unit(rgb)
        if self.residual:
            rgb = rgb.clamp(0.0, 1.0)
        rgb = rgb[..., :height, :width]
        if mask_logits is not None:
            return rgb, mask_logits[..., :height, :width]
        return rgb


def residual_head(conv: nn.Conv2d, residual: bool) -> nn.Module:
    """The last layer: tanh(conv) normally; a zero-initialised conv (no activation) in residual mode."""
    if residual:
        nn.init.zeros_(conv.weight)
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)
        return conv
    return nn.Sequential(conv, nn.Tanh())


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DDP / torch.compile wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def run_generator(
    generator: nn.Module, x: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Call any generator (wrapped or not) and return ``(rgb, mask_logits or None)``."""
    inner = unwrap(generator)
    result = generator(x, mask) if getattr(inner, "takes_mask", False) else generator(x)
    if isinstance(result, tuple):
        return result[0], result[1]
    return result, None


__all__ = ["Generator", "residual_head", "run_generator", "unwrap", "UNIT", "SIGNED"]
