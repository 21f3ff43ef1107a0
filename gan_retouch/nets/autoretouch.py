"""The AutoRetouch generator (Shafaei et al., WACV 2021): one downsample, residual blocks, additive skip."""

from __future__ import annotations

from typing import Unpack

import torch
from torch import nn

from gan_retouch.nets.base import Generator, HeadArgs
from gan_retouch.nets.layers import check_positive, conv3x3, conv_bias, lrelu, norm_factory, upsample_x2
from gan_retouch.registry import GENERATORS


class ResidualBlock(nn.Module):
    """conv3x3 -> norm -> LReLU(0.2) -> conv3x3 -> norm -> LReLU(0.2), plus the identity."""

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        make_norm, bias = norm_factory(norm), conv_bias(norm)
        self.body = nn.Sequential(
            conv3x3(channels, channels, bias=bias), make_norm(channels), lrelu(),
            conv3x3(channels, channels, bias=bias), make_norm(channels), lrelu(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@GENERATORS.register("autoretouch")
class AutoRetouch(Generator):
    """AutoRetouch teacher: 7x7 head, one stride-2 conv, residual blocks, x2 upsample, additive skip, tanh.

    Named submodules (distillation hooks them by name): ``head`` (7x7 conv 3->ngf + LReLU, the skip ``x0``),
    ``down`` (3x3 stride-2 conv ngf->2ngf), ``blocks`` (``blocks.0`` .. ``blocks.{n_blocks-1}``), ``up``
    (2ngf->ngf and x2 upsampling, see ``upsample``), ``tail`` (3x3 conv ngf->3, tanh or residual head).
    Works in [-1, 1]; stride 2.
    """

    stride = 2

    def __init__(
        self,
        ngf: int = 64,
        n_blocks: int = 15,
        norm: str = "batch",
        upsample: str = "nearest",
        **head: Unpack[HeadArgs],
    ) -> None:
        super().__init__(**head)
        check_positive(ngf, "autoretouch ngf")
        check_positive(n_blocks, "autoretouch n_blocks", minimum=0)
        self.head = nn.Sequential(nn.Conv2d(3, ngf, 7, padding=3), lrelu())
        self.down = conv3x3(ngf, 2 * ngf, stride=2)
        self.blocks = nn.Sequential(*[ResidualBlock(2 * ngf, norm) for _ in range(n_blocks)])
        self.up = upsample_x2(2 * ngf, ngf, upsample, "autoretouch upsample")
        self.tail = self.output_head.last_layer(conv3x3(ngf, self.head_channels))

    def forward_padded(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x0 = self.head(x)
        body = self.up(self.blocks(self.down(x0)))
        return self.tail(body + x0)
