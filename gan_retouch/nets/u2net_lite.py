"""A U^2-Net-lite (U2NETP-style) nested U with two heads: the retouched RGB and a face/blemish mask."""

from __future__ import annotations

from typing import Unpack

import torch
import torch.nn.functional as F
from torch import nn

from gan_retouch.nets.base import Generator, HeadArgs
from gan_retouch.nets.layers import check_positive
from gan_retouch.registry import GENERATORS


class ConvBNReLU(nn.Module):
    """3x3 conv (optionally dilated) -> BatchNorm -> ReLU, U^2-Net's REBNCONV."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def upsample_like(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of ``x`` to ``reference``'s spatial size."""
    return F.interpolate(x, size=reference.shape[-2:], mode="bilinear", align_corners=False)


class RSU(nn.Module):
    """Residual U-block of height ``height``: a small U-Net (max-pool down, bilinear up) plus the input conv.

    ``dilated`` replaces pooling by growing dilation (1, 2, 4, ...), U^2-Net's RSU-4F for the coarse stages.
    """

    def __init__(self, height: int, in_channels: int, mid: int, out_channels: int, dilated: bool = False) -> None:
        super().__init__()
        self.dilated = dilated
        self.entry = ConvBNReLU(in_channels, out_channels)
        self.encoder = nn.ModuleList(
            ConvBNReLU(out_channels if i == 0 else mid, mid, 2**i if dilated else 1) for i in range(height - 1)
        )
        self.bottom = ConvBNReLU(mid, mid, 2 ** (height - 1) if dilated else 2)
        self.decoder = nn.ModuleList(
            ConvBNReLU(2 * mid, out_channels if i == 0 else mid, 2**i if dilated else 1) for i in range(height - 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        entry = self.entry(x)
        skips, h = [], entry
        for level, conv in enumerate(self.encoder):
            if level > 0 and not self.dilated:
                h = F.max_pool2d(h, 2, ceil_mode=True)
            h = conv(h)
            skips.append(h)
        h = self.bottom(h)
        for level in range(len(self.decoder) - 1, -1, -1):
            if not self.dilated:
                h = upsample_like(h, skips[level])
            h = self.decoder[level](torch.cat([h, skips[level]], dim=1))
        return h + entry


@GENERATORS.register("u2net_lite")
class U2NetLite(Generator):
    """U^2-Net-lite, multi-task: returns (rgb, mask_logits); six RSU stages, five side outputs fused for the mask.

    Stages ``stages.0``..``stages.5`` (RSU-7, 6, 5, 4, 4F, 4F at 1, 1/2, ..., 1/32 resolution), decoders
    ``decoders.0``..``decoders.4``; every stage is ``width`` channels wide with ``mid`` inside its U (U2NETP's
    64 / 16). RGB from the finest decoder (``rgb_head``); mask logits from the fused side outputs
    (``side_heads``, ``mask_fuse``). Works in [-1, 1]; stride 32.
    """

    stride = 32
    has_mask_head = True

    def __init__(self, width: int = 64, mid: int = 16, **head: Unpack[HeadArgs]) -> None:
        super().__init__(**head)
        check_positive(width, "u2net_lite width")
        check_positive(mid, "u2net_lite mid")
        heights = (7, 6, 5, 4, 4, 4)
        self.stages = nn.ModuleList(
            RSU(h, 3 if i == 0 else width, mid, width, dilated=i >= 4) for i, h in enumerate(heights)
        )
        self.decoders = nn.ModuleList(RSU(h, 2 * width, mid, width, dilated=i >= 4) for i, h in enumerate(heights[:5]))
        self.side_heads = nn.ModuleList(nn.Conv2d(width, 1, 3, padding=1) for _ in range(6))
        self.mask_fuse = nn.Conv2d(6, 1, 1)
        self.rgb_head = self.output_head.last_layer(nn.Conv2d(width, self.head_channels, 3, padding=1))

    def forward_padded(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        encoded, h = [], x
        for index, stage in enumerate(self.stages):
            if index > 0:
                h = F.max_pool2d(h, 2, ceil_mode=True)
            h = stage(h)
            encoded.append(h)
        decoded = [h]
        for index in range(len(self.decoders) - 1, -1, -1):
            h = self.decoders[index](torch.cat([upsample_like(h, encoded[index]), encoded[index]], dim=1))
            decoded.insert(0, h)
        sides = [upsample_like(head(d), x) for head, d in zip(self.side_heads, decoded, strict=True)]
        return self.rgb_head(decoded[0]), self.mask_fuse(torch.cat(sides, dim=1))
