"""The contract every generator keeps: [0, 1] in, [0, 1] out, any size; the output form is the shared head's.

``Generator`` pads to ``stride``, converts to the network's ``value_range`` and crops back; what the layers
return goes through ``nets.heads.OutputHead`` (plain, residual, or edit mask with its floor). A registered
architecture either subclasses ``Generator`` (its constructor takes its own arguments and ``**head:
Unpack[HeadArgs]``, passes ``head`` to ``super().__init__`` and builds its last layer with
``self.output_head.last_layer(conv)`` and ``self.head_channels`` outputs), or is a plain backbone wrapped by
``with_head`` (``nets.backbone``). Either way the head's three arguments (``residual``, ``edit_mask``,
``edit_floor``) are declared once, in ``nets.heads``, and appear in the class's signature (``__signature__``),
which the registry checks recipe arguments against and docs/components.md lists.
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch import nn

from gan_retouch.errors import ConfigError
from gan_retouch.imaging import SIGNED, UNIT, to_signed
from gan_retouch.nets.heads import EDIT_PRIOR, HeadArgs, OutputHead, check_edit_floor, headed_signature


class Generator(nn.Module):
    """Base class of the registered generators.

    Subclasses build their layers and implement ``forward_padded(x, mask)``, which gets the input in the
    network's own ``value_range`` with H and W divisible by ``stride`` and returns the raw output of its last
    layer (``head_channels`` channels; ``(rgb, mask_logits)`` for a multi-task network with
    ``has_mask_head = True``). ``forward(x, mask, floor)`` returns the image, or ``(rgb, logits)`` when the
    head has an edit map or the network a mask head (``has_mask_head`` is then True on the instance).
    ``floor`` is the edit map's floor for this call (None = the network's own ``edit_floor``, at inference
    only). A user strength S in [0, 1] needs no hook: ``x + S * (G(x) - x)`` equals ``x + S * m * delta``.
    """

    value_range: tuple[float, float] = SIGNED  # the range the layers work in
    stride: int = 1  # H and W are padded to a multiple of this
    has_mask_head: bool = False  # forward returns (rgb, mask_logits)
    takes_mask: bool = False  # forward uses the mask argument

    def __init_subclass__(cls, **kwargs: object) -> None:
        """A subclass whose ``__init__`` takes ``**head`` gets its own arguments plus the head's as its signature."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None:
            own = list(inspect.signature(init).parameters.values())[1:]
            if any(p.kind is p.VAR_KEYWORD for p in own):
                cls.__signature__ = headed_signature(own)

    def __init__(self, residual: bool = False, edit_mask: bool = False, edit_floor: float = 0.0) -> None:
        super().__init__()
        self.output_head = OutputHead.build(residual, edit_mask, edit_floor, self.has_mask_head, self.value_range)
        if self.output_head.returns_logits:
            self.has_mask_head = True  # the instance now returns (rgb, logits)

    @property
    def residual(self) -> bool:
        return self.output_head.residual

    @property
    def edit_mask(self) -> bool:
        return self.output_head.edit_mask

    @property
    def edit_floor(self) -> float:
        """The floor the network was built with (the default of each call; read-only)."""
        return self.output_head.edit_floor

    @property
    def splits_edit_channel(self) -> bool:
        return self.output_head.splits_edit_channel

    @property
    def head_channels(self) -> int:
        """Output channels of the last layer: 3 (RGB or change), 4 with an edit-map logit."""
        return self.output_head.channels

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

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, floor: float | None = None):
        inside, mask, (height, width) = self._padded(x, mask)
        rgb, logits = self.output_head(inside, self.forward_padded(inside, mask), floor, self.training)
        rgb = rgb[..., :height, :width]
        if logits is not None:
            return rgb, logits[..., :height, :width]
        return rgb

    def edit_logit_bias(self) -> torch.Tensor:
        """The bias entries of the edit-map logit (a view of the parameter): channel 3 of the layer the head
        built. Networks that predict the logit in a layer of their own override this."""
        layers = [m for m in self.modules() if getattr(m, "is_output_layer", False)]
        if not self.splits_edit_channel or len(layers) != 1 or layers[0].bias is None:
            raise ConfigError(f"{type(self).__name__} has no edit-map channel in a last layer with a bias: build it "
                              "with edit_mask: true, or leave the edit map as it is (init_open_map: 0)")
        return layers[0].bias[3:4]

    @torch.no_grad()
    def open_edit_map(self, offset: float) -> None:
        """Add ``offset`` to every pixel's edit-map logit: m = sigmoid(z) opens everywhere (``offset`` > 0) while
        the network still decides where, relative to the rest, it edits most."""
        self.edit_logit_bias().add_(offset)

    def edit_map(self, x: torch.Tensor, mask: torch.Tensor | None = None, floor: float | None = None) -> torch.Tensor:
        """The edit map m ``[N,1,H,W]`` in [0, 1] (where and how strongly the network edits ``x``)."""
        if not self.edit_mask:
            raise ConfigError("edit_map() needs a generator built with edit_mask: true")
        return self.output_head.edit_strength(self.forward(x, mask, floor)[1], floor, self.training)


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
    generator: nn.Module, x: torch.Tensor, mask: torch.Tensor | None = None, floor: float | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Call any generator (wrapped or not) and return ``(rgb, mask_logits or None)``; ``floor`` is the edit
    map's floor for this call (None = the network's own)."""
    inner = unwrap(generator)
    args = (x, mask) if getattr(inner, "takes_mask", False) else (x,)
    result = generator(*args) if floor is None else generator(*args, floor=floor)
    if isinstance(result, tuple):
        return result[0], result[1]
    return result, None


__all__ = ["EDIT_PRIOR", "Generator", "HeadArgs", "check_edit_floor", "run_generator", "unwrap", "UNIT", "SIGNED"]
