"""The contract every generator keeps: [0, 1] in, [0, 1] out, any size, optional residual or edit-mask output."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from gan_retouch.errors import ConfigError
from gan_retouch.imaging import SIGNED, UNIT, to_signed, to_unit
from gan_retouch.values import is_number

EDIT_PRIOR = -3.0  # added to the edit-map logit: a fresh map is nearly closed (sigmoid(-3) = 0.047)


class Generator(nn.Module):
    """Base class of the registered generators.

    Subclasses build their layers and implement ``forward_padded(x, mask)``, which gets the input in the
    network's own ``value_range`` with H and W divisible by ``stride``. This class pads and crops back,
    converts ranges and applies one of three output forms:

    - plain (``residual=False``): ``forward_padded`` returns the image (tanh), ``out = g(x)``;
    - residual (``residual=True``): it returns a change, ``out = x + f(x)``; the last layer is zero-initialised
      (``residual_head``), so a fresh network is exactly the identity;
    - edit mask (``edit_mask=True``, implies the residual form): do no harm by design. The last layer has
      ``self.head_channels`` = 4 outputs, a change ``delta`` (3) and an edit-map logit ``z`` (1), and
      ``out = x + m * delta`` with ``m = sigmoid(z)`` in [0, 1]: pixels where m = 0 stay exactly at the input.
      ``z`` is the head's output plus ``EDIT_PRIOR`` (-3), so a fresh map is nearly closed (m = 0.047) and opens
      only where training finds something to fix. ``edit_floor`` f in [0, 1) makes the map sparse at
      inference (eval mode): ``m = max(0, (sigmoid(z) - f) / (1 - f))``, so the faint edits a map leaves where
      the network is unsure (sigmoid(z) < f: hair, eye whites, backgrounds of photos unlike the training data)
      become exactly zero; where it is sure (sigmoid(z) near 1) m stays near 1. In training m stays the plain
      sigmoid, like dropout: every pixel keeps its gradient, and the network is not taught to open its map wider
      to make up for the floor (a floor in training did that: benchmarks/README.md). f = 0 is off.
      The forward returns ``(rgb, z)`` (``has_mask_head`` is True), so the engine hands ``z`` to the loss terms
      as ``pred_mask`` (supervise it with ``edit_map`` or ``mask_bce``; ``keep`` holds clean pixels still).
      A multi-task network that already returns ``(rgb, mask_logits)`` uses its mask logits as ``z``.

    Interface for a subclass (students included): build the last layer with ``self.head_channels`` outputs and
    wrap it in ``residual_head(conv, self.residual)``; ``forward_padded`` returns that layer's output. When
    ``self.splits_edit_channel`` is True (edit_mask on a network without its own mask head) the base class takes
    channel 3 of that output as ``z``. ``edit_map(x)`` returns m. A user strength S in [0, 1] needs no hook:
    ``x + S * (G(x) - x)`` equals ``x + S * m * delta``.
    """

    value_range: tuple[float, float] = SIGNED  # the range the layers work in
    stride: int = 1  # H and W are padded to a multiple of this
    has_mask_head: bool = False  # forward returns (rgb, mask_logits)
    takes_mask: bool = False  # forward uses the mask argument

    def __init__(self, residual: bool = False, edit_mask: bool = False, edit_floor: float = 0.0) -> None:
        super().__init__()
        for key, value in (("residual", residual), ("edit_mask", edit_mask)):
            if not isinstance(value, bool):
                raise ConfigError(f"generator argument {key} must be true or false, got {value!r}")
        self.edit_mask = edit_mask
        self.edit_floor = check_edit_floor(edit_floor, edit_mask)
        self.residual = residual or edit_mask
        self.splits_edit_channel = edit_mask and not self.has_mask_head
        if edit_mask:
            self.has_mask_head = True  # the instance now returns (rgb, edit logits)

    @property
    def head_channels(self) -> int:
        """Output channels of the last layer: 3 (RGB or change), 4 with an edit-map logit."""
        return 4 if self.splits_edit_channel else 3

    def forward_padded(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        raise NotImplementedError

    def _padded(self, x: torch.Tensor, mask: torch.Tensor | None):
        """The input padded to ``stride`` and in ``value_range``, the padded mask and the original H, W."""
        height, width = x.shape[-2:]
        pad_h, pad_w = (-height) % self.stride, (-width) % self.stride
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
            if mask is not None:
                mask = F.pad(mask, (0, pad_w, 0, pad_h), mode="replicate")
        if self.value_range == SIGNED:
            x = to_signed(x)
        return x, mask, (height, width)

    def _split(self, result) -> tuple[torch.Tensor, torch.Tensor | None]:
        rgb, logits = result if isinstance(result, tuple) else (result, None)
        if self.splits_edit_channel:
            rgb, logits = rgb[:, :3], rgb[:, 3:4]
        return rgb, logits

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None):
        inside, mask, (height, width) = self._padded(x, mask)
        rgb, mask_logits = self._split(self.forward_padded(inside, mask))
        if self.edit_mask:
            mask_logits = mask_logits + EDIT_PRIOR
            rgb = self.edit_strength(mask_logits) * rgb
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

    def edit_strength(self, logits: torch.Tensor) -> torch.Tensor:
        """m from the edit-map logits z: sigmoid(z); in eval mode floored at ``edit_floor`` and rescaled to reach 1."""
        opened = torch.sigmoid(logits)
        if self.edit_floor == 0.0 or self.training:
            return opened
        return ((opened - self.edit_floor) / (1.0 - self.edit_floor)).clamp_min(0.0)

    def edit_map(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The edit map m ``[N,1,H,W]`` in [0, 1] (where and how strongly the network edits ``x``)."""
        if not self.edit_mask:
            raise ConfigError("edit_map() needs a generator built with edit_mask: true")
        return self.edit_strength(self.forward(x, mask)[1])


def check_edit_floor(value: object, edit_mask: bool) -> float:
    """``edit_floor`` as a float in [0, 1); a clear error otherwise, or when there is no edit map to floor."""
    if not is_number(value) or not 0.0 <= value < 1.0:
        raise ConfigError(f"generator argument edit_floor = {value!r} is out of range; valid: [0, 1) "
                          "(0 = off; e.g. 0.25 zeroes the edits where the edit map is below 0.25)")
    if value and not edit_mask:
        raise ConfigError(f"generator argument edit_floor = {value!r} needs edit_mask: true (it floors the edit "
                          "map); set model.generator.args.edit_mask=true or drop edit_floor")
    return float(value)


def override_edit_floor(generator: nn.Module, floor: float | None, key: str, source: str) -> None:
    """Give a loaded edit-mask generator the inference floor ``floor`` for one run (None keeps its own).

    ``key`` names the option and ``source`` the checkpoint in the error for a generator without an edit map.
    """
    if floor is None:
        return
    if not getattr(generator, "edit_mask", False):
        raise ConfigError(f"{key} needs a model with an edit map; {source} was trained without "
                          f"model.generator.args.edit_mask: true (drop {key})")
    generator.edit_floor = check_edit_floor(floor, True)


@contextmanager
def edit_floor_at_least(generator: nn.Module, floor: float) -> Iterator[None]:
    """Within the block an edit-mask generator floors its map at ``floor`` or its own floor, whichever is higher."""
    own = generator.edit_floor
    generator.edit_floor = max(own, floor)
    try:
        yield
    finally:
        generator.edit_floor = own


def residual_head(conv: nn.Conv2d | nn.ConvTranspose2d, residual: bool) -> nn.Module:
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
