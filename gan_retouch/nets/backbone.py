"""Any backbone as a generator: the shared output head (residual, edit map, floor) around raw channels.

An architecture from another codebase (a NAFNet-style block stack, say) plugs in as a plain ``nn.Module``:

    class MyBackbone(nn.Module):
        def __init__(self, out_channels: int, width: int = 32) -> None:
            ...
            self.output_layer = nn.Conv2d(width, out_channels, 3, padding=1)  # its last layer

        def forward(self, x):  # x in the backbone's value range, H and W multiples of the stride
            ...
            return self.output_layer(features)  # raw channels

    GENERATORS.register("mine")(with_head(MyBackbone, stride=8))

``with_head`` returns a ``Generator`` class whose constructor takes the backbone's own arguments plus
``residual``, ``edit_mask`` and ``edit_floor``. It builds the backbone with ``out_channels`` = 3, or 4 with an
edit map, zero-initialises ``output_layer`` in the residual forms (a fresh network is the identity), and
applies tanh (sigmoid for a [0, 1] backbone) in the plain form. The backbone's weights live under
``backbone.``; padding, range conversion and the head are the base class's (``nets.base.Generator``).
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from gan_retouch.errors import ConfigError
from gan_retouch.imaging import SIGNED
from gan_retouch.nets.base import Generator
from gan_retouch.nets.heads import HEAD_ARGUMENTS, headed_signature, zero_initialised
from gan_retouch.registry import check_arguments


def with_head(backbone: type[nn.Module], *, stride: int = 1, value_range: tuple[float, float] = SIGNED,
              takes_mask: bool = False) -> type[Generator]:
    """A ``Generator`` class around ``backbone`` (see the module docstring); ``takes_mask`` backbones get the
    defect mask as a second argument."""
    own = [p for name, p in inspect.signature(backbone).parameters.items() if name != "out_channels"]
    if "out_channels" not in inspect.signature(backbone).parameters:
        raise ConfigError(f"backbone {backbone.__name__} must take out_channels (3, or 4 with an edit map)")
    clashes = [p.name for p in own if p.name in HEAD_ARGUMENTS]
    if clashes:
        raise ConfigError(f"backbone {backbone.__name__} takes {', '.join(clashes)}, which the output head owns")

    class HeadedGenerator(Generator):
        def __init__(self, **args: object) -> None:
            super().__init__(**{name: args.pop(name) for name in HEAD_ARGUMENTS if name in args})
            check_arguments(backbone, args, f"backbone {backbone.__name__}")
            self.backbone = backbone(out_channels=self.head_channels, **args)
            layer = getattr(self.backbone, "output_layer", None)
            if not isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                raise ConfigError(f"backbone {backbone.__name__} needs an output_layer attribute: its last conv")
            layer.is_output_layer = True  # found by Generator.edit_logit_bias
            if self.residual:
                zero_initialised(layer)  # a fresh network is the identity

        def forward_padded(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
            raw = self.backbone(x, mask) if takes_mask else self.backbone(x)
            if self.residual:
                return raw
            return torch.tanh(raw) if self.value_range == SIGNED else torch.sigmoid(raw)

    HeadedGenerator.stride = stride
    HeadedGenerator.value_range = value_range
    HeadedGenerator.takes_mask = takes_mask
    HeadedGenerator.__name__ = HeadedGenerator.__qualname__ = f"{backbone.__name__}Generator"
    HeadedGenerator.__doc__ = inspect.getdoc(backbone)
    HeadedGenerator.__signature__ = headed_signature(p.replace(kind=p.KEYWORD_ONLY) for p in own)
    return HeadedGenerator
