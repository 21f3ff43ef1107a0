"""A mask-guided generator built from gated convolutions (DeepFill v2, Yu et al. 2019)."""

from __future__ import annotations

from typing import Unpack

import torch
import torch.nn.functional as F
from torch import nn

from gan_retouch.errors import ConfigError
from gan_retouch.nets.base import Generator, HeadArgs
from gan_retouch.nets.layers import check_positive
from gan_retouch.registry import GENERATORS


class GatedConv2d(nn.Module):
    """``ELU(features) * sigmoid(gate)``, both from one conv with twice the output channels."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1, dilation: int = 1):
        super().__init__()
        padding = dilation * (kernel - 1) // 2
        self.conv = nn.Conv2d(in_channels, 2 * out_channels, kernel, stride, padding, dilation)
        self._init_signal_preserving(out_channels)

    def _init_signal_preserving(self, out_channels: int) -> None:
        """He init x2 for the feature half: a fresh gate is ~0.5, which would halve the signal at every layer
        (with PyTorch's default init the output of a fresh 13-layer stack ignores its input)."""
        with torch.no_grad():
            nn.init.kaiming_normal_(self.conv.weight[:out_channels], nonlinearity="relu")
            self.conv.weight[:out_channels] *= 2.0
            nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, gate = self.conv(x).chunk(2, dim=1)
        return F.elu(features) * torch.sigmoid(gate)


@GENERATORS.register("gated")
class GatedGenerator(Generator):
    """DeepFill v2-style gated-conv encoder-decoder that takes the image and its defect mask (takes_mask).

    Input: the image and the mask (4 channels); ``erase_masked`` blanks the masked pixels first (inpainting).
    ``encoder`` (2 stride-2 gated convs), ``dilated`` (gated convs with ``dilations``), ``decoder`` (2 nearest
    x2 upsamples), ``tail``. Works in [-1, 1]; stride 4. DeepFill v2 uses ngf=48.
    """

    stride = 4
    takes_mask = True

    def __init__(
        self,
        ngf: int = 48,
        dilations: list[int] | tuple[int, ...] = (2, 4, 8, 16),
        erase_masked: bool = False,
        **head: Unpack[HeadArgs],
    ) -> None:
        super().__init__(**head)
        check_positive(ngf, "gated ngf")
        self.erase_masked = erase_masked
        self.encoder = nn.Sequential(
            GatedConv2d(4, ngf, 5), GatedConv2d(ngf, 2 * ngf, 3, stride=2), GatedConv2d(2 * ngf, 2 * ngf),
            GatedConv2d(2 * ngf, 4 * ngf, 3, stride=2), GatedConv2d(4 * ngf, 4 * ngf),
        )
        self.dilated = nn.Sequential(*[GatedConv2d(4 * ngf, 4 * ngf, 3, dilation=int(d)) for d in dilations])
        self.decoder = nn.Sequential(
            GatedConv2d(4 * ngf, 4 * ngf), nn.Upsample(scale_factor=2, mode="nearest"),
            GatedConv2d(4 * ngf, 2 * ngf), GatedConv2d(2 * ngf, 2 * ngf), nn.Upsample(scale_factor=2, mode="nearest"),
            GatedConv2d(2 * ngf, ngf), GatedConv2d(ngf, max(ngf // 2, 1)),
        )
        self.tail = self.output_head.last_layer(nn.Conv2d(max(ngf // 2, 1), self.head_channels, 3, padding=1))

    def forward_padded(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            raise ConfigError(
                "the gated generator needs a defect mask: use data with masks (the synthetic data has them, or set "
                "data.mask_dir for folders), or choose a generator that does not take a mask"
            )
        mask = mask.to(x.dtype)
        if self.erase_masked:
            x = x * (1.0 - mask)
        return self.tail(self.decoder(self.dilated(self.encoder(torch.cat([x, mask], dim=1)))))
