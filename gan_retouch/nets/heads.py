"""The output head every generator shares: how a backbone's raw channels become the retouched image.

A backbone ends in a layer with ``OutputHead.channels`` outputs (3, or 4 with an edit map) and returns them
raw; the head does the rest, in one of three forms:

- plain (``residual=False``): the raw output is the image (the backbone ends in tanh), ``out = g(x)``;
- residual (``residual=True``): the raw output is a change, ``out = x + f(x)``, clamped; the last layer is
  zero-initialised (``OutputHead.last_layer``), so a fresh network is exactly the identity;
- edit mask (``edit_mask=True``, implies the residual form): do no harm by design. The raw output is a change
  ``delta`` (3 channels) and an edit-map logit (1), ``out = x + m * delta`` with ``m`` in [0, 1]: pixels
  where m = 0 stay exactly at the input. The logit gets ``EDIT_PRIOR`` (-3) added, so a fresh map is nearly
  closed (m = 0.047) and opens only where training finds something to fix. A floor f in [0, 1) makes the map
  sparse at inference: ``m = max(0, (sigmoid(z) - f) / (1 - f))``, so the faint edits a map leaves where the
  network is unsure become exactly zero while sure edits (sigmoid(z) near 1) stay near 1. In training m stays
  the plain sigmoid, like dropout (a floor in training taught networks to open their maps wider). The floor is
  an argument of each call (``floor``; None = the head's own ``edit_floor``), so a run can use another floor,
  or the coarse pass a higher one, without changing the network.

A multi-task backbone that returns ``(rgb, mask_logits)`` itself (``own_logits``) uses its mask logits as the
edit map's logit. The head has no weights: it changes no state_dict.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypedDict

import torch
from torch import nn

from gan_retouch.errors import ConfigError
from gan_retouch.imaging import SIGNED, to_unit
from gan_retouch.values import is_number

EDIT_PRIOR = -3.0  # added to the edit-map logit: a fresh map is nearly closed (sigmoid(-3) = 0.047)
HEAD_ARGUMENTS = {"residual": False, "edit_mask": False, "edit_floor": 0.0}  # every generator's, with defaults


class HeadArgs(TypedDict, total=False):
    """The head's constructor arguments, which every generator takes: ``**head: Unpack[HeadArgs]``."""

    residual: bool
    edit_mask: bool
    edit_floor: float


def headed_signature(own: Iterable[inspect.Parameter]) -> inspect.Signature:
    """A generator's constructor signature as the registry and docs/components.md see it: its own arguments
    (``own``, without ``*args`` / ``**head``), then the head's keyword arguments with their defaults."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    head = [inspect.Parameter(name, keyword, default=default) for name, default in HEAD_ARGUMENTS.items()]
    return inspect.Signature([p for p in own if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)] + head)


def check_edit_floor(value: object, edit_mask: bool, key: str = "generator argument edit_floor") -> float:
    """``value`` as an edit floor in [0, 1); a ConfigError naming ``key`` otherwise, or without an edit map."""
    if not is_number(value) or not 0.0 <= value < 1.0:
        raise ConfigError(f"{key} = {value!r} is out of range; valid: [0, 1) "
                          "(0 = off; e.g. 0.25 zeroes the edits where the edit map is below 0.25)")
    if value and not edit_mask:
        raise ConfigError(f"{key} = {value!r} needs edit_mask: true (it floors the edit map); set "
                          "model.generator.args.edit_mask=true or drop edit_floor")
    return float(value)


def zero_initialised(conv: nn.Conv2d | nn.ConvTranspose2d) -> nn.Conv2d | nn.ConvTranspose2d:
    """``conv`` with zero weights and bias: a residual head that starts at the identity."""
    nn.init.zeros_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


@dataclass(frozen=True)
class OutputHead:
    """The output form of a generator (see the module docstring); call it on the raw backbone output."""

    residual: bool = False
    edit_mask: bool = False
    edit_floor: float = 0.0  # the floor used when a call gives none
    own_logits: bool = False  # the backbone returns (rgb, mask_logits) itself
    value_range: tuple[float, float] = SIGNED  # the range the backbone works in

    @classmethod
    def build(cls, residual: bool, edit_mask: bool, edit_floor: float, own_logits: bool,
              value_range: tuple[float, float]) -> OutputHead:
        """A checked head from a generator's ``residual``, ``edit_mask`` and ``edit_floor`` arguments."""
        for key, value in (("residual", residual), ("edit_mask", edit_mask)):
            if not isinstance(value, bool):
                raise ConfigError(f"generator argument {key} must be true or false, got {value!r}")
        return cls(residual or edit_mask, edit_mask, check_edit_floor(edit_floor, edit_mask), own_logits, value_range)

    @property
    def splits_edit_channel(self) -> bool:
        """Whether the edit-map logit is channel 3 of the raw output (edit mask on a single-output backbone)."""
        return self.edit_mask and not self.own_logits

    @property
    def channels(self) -> int:
        """Output channels of the backbone's last layer: 3 (RGB or change), 4 with an edit-map logit."""
        return 4 if self.splits_edit_channel else 3

    @property
    def returns_logits(self) -> bool:
        """Whether the generator returns ``(rgb, logits)``."""
        return self.edit_mask or self.own_logits

    def last_layer(self, conv: nn.Conv2d | nn.ConvTranspose2d) -> nn.Module:
        """The backbone's last layer: tanh(conv) in the plain form; a zero-initialised conv otherwise. The conv is
        marked (``is_output_layer``) so that ``Generator.edit_logit_bias`` finds it."""
        conv.is_output_layer = True
        return zero_initialised(conv) if self.residual else nn.Sequential(conv, nn.Tanh())

    def edit_strength(self, logits: torch.Tensor, floor: float | None = None, training: bool = False) -> torch.Tensor:
        """m from the edit-map logits z: sigmoid(z), floored at ``floor`` (None = ``edit_floor``; the own floor
        applies at inference only, an explicit one always) and rescaled to reach 1."""
        opened = torch.sigmoid(logits)
        if floor is None:
            floor = 0.0 if training else self.edit_floor
        if floor == 0.0:
            return opened
        return ((opened - floor) / (1.0 - floor)).clamp_min(0.0)

    def __call__(self, inside: torch.Tensor, raw: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
                 floor: float | None = None, training: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(rgb in [0, 1], logits or None)`` from the backbone's ``raw`` output for its input ``inside`` (in
        ``value_range``, padded); ``floor`` as in ``edit_strength``."""
        rgb, logits = raw if isinstance(raw, tuple) else (raw, None)
        if self.splits_edit_channel:
            rgb, logits = rgb[:, :3], rgb[:, 3:4]
        if floor is not None and not self.edit_mask and floor != 0.0:
            raise ConfigError(f"an edit floor ({floor:g}) needs a model with an edit map; this one has none")
        if self.edit_mask:
            logits = logits + EDIT_PRIOR
            rgb = self.edit_strength(logits, floor, training) * rgb
        if self.residual:
            rgb = inside + rgb
        if self.value_range == SIGNED:
            rgb = to_unit(rgb)
        if self.residual:
            rgb = rgb.clamp(0.0, 1.0)
        return rgb, logits
