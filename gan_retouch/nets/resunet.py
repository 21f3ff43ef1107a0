"""A U-Net whose encoder and decoder levels are residual blocks (the Mask2Face architecture)."""

from __future__ import annotations

from typing import Unpack

import torch
import torch.nn.functional as F
from torch import nn

from gan_retouch.errors import ConfigError
from gan_retouch.nets.base import Generator, HeadArgs
from gan_retouch.nets.layers import conv_bias, norm_factory
from gan_retouch.registry import GENERATORS


class ResConvBlock(nn.Module):
    """conv(k) -> norm -> ReLU -> conv(k) -> norm, plus a 1x1-projected shortcut, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, norm: str) -> None:
        super().__init__()
        make_norm, bias = norm_factory(norm), conv_bias(norm)
        pad = kernel // 2
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel, padding=pad, bias=bias), make_norm(out_channels),
            nn.ReLU(True),
            nn.Conv2d(out_channels, out_channels, kernel, padding=pad, bias=bias), make_norm(out_channels),
        )
        self.shortcut = (
            nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1, bias=False)
        )
        self.act = nn.ReLU(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


@GENERATORS.register("resunet")
class ResUNet(Generator):
    """Residual U-Net (Mask2Face): a residual block per level, 2x2 max-pool down, bilinear up + skip concat.

    Level ``i`` has ``filters[i]`` channels and ``kernels[i]`` kernel size; ``encoder.i`` / ``decoder.i`` are
    its blocks. Works in [-1, 1]; stride 2**(len(filters) - 1).
    """

    def __init__(
        self,
        filters: list[int] | tuple[int, ...] = (64, 128, 128, 256, 256, 512),
        kernels: list[int] | tuple[int, ...] = (7, 7, 7, 3, 3, 3),
        norm: str = "batch",
        **head: Unpack[HeadArgs],
    ) -> None:
        super().__init__(**head)
        filters, kernels = list(filters), list(kernels)
        if len(filters) < 2 or len(filters) != len(kernels):
            raise ConfigError(
                f"resunet needs filters and kernels of the same length >= 2 (one per level), got "
                f"filters={filters} and kernels={kernels}"
            )
        if any(k % 2 == 0 or k < 1 for k in kernels):
            raise ConfigError(f"resunet kernels must be odd positive sizes, got {kernels}")
        self.stride = 2 ** (len(filters) - 1)
        self.encoder = nn.ModuleList(
            ResConvBlock(3 if i == 0 else filters[i - 1], filters[i], kernels[i], norm) for i in range(len(filters))
        )
        self.decoder = nn.ModuleList(
            ResConvBlock(filters[i + 1] + filters[i], filters[i], kernels[i], norm) for i in range(len(filters) - 1)
        )
        self.tail = self.output_head.last_layer(nn.Conv2d(filters[0], self.head_channels, 1))

    def forward_padded(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        skips = []
        for level, block in enumerate(self.encoder):
            x = block(x if level == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for level in range(len(self.decoder) - 1, -1, -1):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = self.decoder[level](torch.cat([x, skips[level]], dim=1))
        return self.tail(x)
