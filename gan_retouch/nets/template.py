"""The template network: copy this file to add an architecture (docs/architecture.md, "Adding a network").

A network is a plain ``nn.Module`` backbone: it takes ``out_channels`` and its own arguments, works on an image
in its value range ([-1, 1] here) whose H and W are multiples of the stride, and returns the raw channels of its
last conv, named ``output_layer``. ``with_head`` (``nets.backbone``) makes it a registered generator: padding to
the stride, the value range, and the shared output head (``residual``, ``edit_mask``, ``edit_floor``) come with
it, so the network runs every inference plan (working size, coarse pass, floor, strength, tiles) and exports to
ONNX and TorchScript with no more code (``tests/nets/test_template.py`` checks all of it).
"""

from __future__ import annotations

import torch
from torch import nn

from gan_retouch.nets.backbone import with_head
from gan_retouch.nets.layers import check_positive, conv3x3, lrelu
from gan_retouch.registry import GENERATORS


class Template(nn.Module):
    """Template: a 3x3 conv, one stride-2 level with a skip, and the output conv (copy nets/template.py).

    Args:
        width: channels of the first level (the second has twice as many).
    """

    def __init__(self, out_channels: int, width: int = 16) -> None:
        super().__init__()
        check_positive(width, "template width")
        self.stem = nn.Sequential(conv3x3(3, width), lrelu())
        self.down = nn.Sequential(conv3x3(width, 2 * width, stride=2), lrelu())
        self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                conv3x3(2 * width, width), lrelu())
        self.output_layer = conv3x3(width, out_channels)  # the raw channels: the head does the rest

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.stem(x)
        return self.output_layer(skip + self.up(self.down(skip)))


GENERATORS.register("template")(with_head(Template, stride=2))
