"""The pix2pix baselines (Isola et al. 2017): the ResNet generator and the U-Net generator."""

from __future__ import annotations

from typing import Unpack

import torch
from torch import nn

from gan_retouch.nets.base import Generator, HeadArgs
from gan_retouch.nets.layers import check_positive, conv_bias, norm_factory
from gan_retouch.registry import GENERATORS


class ResnetBlock(nn.Module):
    """pix2pix's block: reflect-pad, conv3x3, norm, ReLU, (dropout 0.5), reflect-pad, conv3x3, norm; + identity."""

    def __init__(self, channels: int, norm: str, dropout: bool) -> None:
        super().__init__()
        make_norm, bias = norm_factory(norm), conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), make_norm(channels), nn.ReLU(True)
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), make_norm(channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@GENERATORS.register("pix2pix_resnet")
class Pix2PixResnet(Generator):
    """pix2pix ResNet generator: 7x7 head, 2 stride-2 downsamples, residual blocks, 2 transposed-conv upsamples.

    Submodules: ``head``, ``down``, ``blocks``, ``up``, ``tail``. Works in [-1, 1]; stride 4. ``norm``
    defaults to batch, as pix2pix sets it; ``dropout`` (0.5 inside each block) is off by default.
    """

    stride = 4

    def __init__(
        self, ngf: int = 64, n_blocks: int = 9, norm: str = "batch", dropout: bool = False,
        **head: Unpack[HeadArgs],
    ) -> None:
        super().__init__(**head)
        check_positive(ngf, "pix2pix_resnet ngf")
        check_positive(n_blocks, "pix2pix_resnet n_blocks", minimum=0)
        make_norm, bias = norm_factory(norm), conv_bias(norm)
        self.head = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7, bias=bias), make_norm(ngf), nn.ReLU(True)
        )
        down: list[nn.Module] = []
        for level in range(2):
            width = ngf * 2**level
            down += [nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=bias), make_norm(2 * width),
                     nn.ReLU(True)]
        self.down = nn.Sequential(*down)
        self.blocks = nn.Sequential(*[ResnetBlock(4 * ngf, norm, dropout) for _ in range(n_blocks)])
        up: list[nn.Module] = []
        for level in (2, 1):
            width = ngf * 2**level
            up += [nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                   make_norm(width // 2), nn.ReLU(True)]
        self.up = nn.Sequential(*up)
        tail = self.output_head.last_layer(nn.Conv2d(ngf, self.head_channels, 7))
        self.tail = nn.Sequential(nn.ReflectionPad2d(3), tail)

    def forward_padded(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.tail(self.up(self.blocks(self.down(self.head(x)))))


@GENERATORS.register("pix2pix_unet")
class Pix2PixUnet(Generator):
    """pix2pix U-Net generator (U-Net 256 at num_downs=8): 4x4 stride-2 convs down, transposed convs up, skips.

    Widths ngf, 2ngf, 4ngf, then 8ngf for the deeper levels. ``downs[i]`` and ``ups[i]`` are level ``i``
    (0 = full resolution). Dropout 0.5 on the 8ngf decoder levels below the innermost (pix2pix's noise), on by
    default like pix2pix. Works in [-1, 1]; stride 2**num_downs (256 for the default).
    """

    def __init__(
        self, ngf: int = 64, num_downs: int = 8, norm: str = "batch", dropout: bool = True,
        **head: Unpack[HeadArgs],
    ) -> None:
        super().__init__(**head)
        check_positive(ngf, "pix2pix_unet ngf")
        check_positive(num_downs, "pix2pix_unet num_downs", minimum=2)
        self.stride = 2**num_downs
        make_norm, bias = norm_factory(norm), conv_bias(norm)
        widths = [ngf * 2 ** min(level, 3) for level in range(num_downs)]
        last = num_downs - 1
        self.downs = nn.ModuleList()
        self.ups = nn.ModuleList()
        for level, width in enumerate(widths):
            in_channels = 3 if level == 0 else widths[level - 1]
            conv = nn.Conv2d(in_channels, width, 4, stride=2, padding=1, bias=bias)
            if level == 0:
                self.downs.append(conv)
            elif level == last:
                self.downs.append(nn.Sequential(nn.LeakyReLU(0.2), conv))
            else:
                self.downs.append(nn.Sequential(nn.LeakyReLU(0.2), conv, make_norm(width)))
            up_in = width if level == last else 2 * width
            if level == 0:
                up_conv = nn.ConvTranspose2d(up_in, self.head_channels, 4, stride=2, padding=1)
                self.ups.append(nn.Sequential(nn.ReLU(), self.output_head.last_layer(up_conv)))
                continue
            out = widths[level - 1]
            up: list[nn.Module] = [nn.ReLU(), nn.ConvTranspose2d(up_in, out, 4, stride=2, padding=1, bias=bias),
                                   make_norm(out)]
            if dropout and 4 <= level < last:
                up.append(nn.Dropout(0.5))
            self.ups.append(nn.Sequential(*up))

    def forward_padded(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        x = self.ups[-1](skips[-1])
        for level in range(len(self.ups) - 2, -1, -1):
            x = self.ups[level](torch.cat([skips[level], x], dim=1))
        return x
