"""The fast parametric student: dense convolutions at 1/4 resolution, per-pixel gain and offset at full resolution.

Why: the depthwise student (``student``) has 27x fewer MACs than the teacher but is only 2-5x faster on a CPU,
because its full-resolution depthwise convolutions, BatchNorm and elementwise chains are memory-bound. This one
puts all its arithmetic in dense 3x3 convolutions at low resolution (compute-bound, they run near the CPU's
peak) and touches full-resolution tensors only a handful of times:

    s      = pixel_unshuffle(x, scale)       every full-resolution pixel kept, as 3 * scale**2 channels
    f      = blocks(stem(s)) + context(...)  dense conv3x3 + BN + LeakyReLU at 1/scale (and coarser for context)
    a, b   = head(f)                         zero-initialised conv1x1: a gain and an offset for each of the
                                             scale**2 full-resolution pixels of a cell, per colour
    out    = x + pixel_shuffle(a * s + b)    = (1 + a) * x + b at full resolution, clamped by the base class

Pore-level detail is kept: the network sees every full-resolution pixel (space-to-depth) and predicts ``a`` and
``b`` for every one of them (depth-to-space), so a 3-pixel spot can be healed without blurring its surroundings;
the "upsampling" of the low-resolution parameters is learned and guided by the full-resolution pixels of each
cell. The head starts at zero, so a fresh student returns its input exactly (identity baseline, do-no-harm).

``fuse()`` folds every BatchNorm into the convolution before it, for inference (equal outputs in eval mode).

Layout (stable module names, for feature distillation): ``stem``, ``blocks.i``, ``context.downs.i``,
``context.blocks.i``, ``context.up``, ``head``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from gan_retouch.errors import ConfigError
from gan_retouch.imaging import UNIT
from gan_retouch.nets.base import Generator
from gan_retouch.registry import GENERATORS

SCALES = (2, 4)
SLOPE = 0.1


class ConvBN(nn.Module):
    """conv3x3 (stride 1 or 2) -> BatchNorm -> LeakyReLU (or no activation); ``fuse()`` folds the norm."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(out_channels)
        self.act: nn.Module = nn.LeakyReLU(SLOPE, inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))

    def fuse(self) -> None:
        """Fold the (eval-mode) BatchNorm into the convolution's weight and bias, and drop it."""
        if isinstance(self.bn, nn.BatchNorm2d):
            self.conv = fuse_conv_bn_eval(self.conv.eval(), self.bn.eval())
            self.bn = nn.Identity()


class ResBlock(nn.Module):
    """``act(x + convbn(convbn(x)))``: two dense 3x3 convolutions with a residual connection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.first = ConvBN(channels, channels)
        self.second = ConvBN(channels, channels, act=False)
        self.act = nn.LeakyReLU(SLOPE, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.second(self.first(x)))


class Context(nn.Module):
    """A coarse path for tone and a large receptive field: ``levels`` stride-2 downsamplings (2 x ``width``
    channels, one block each), a 1x1 conv back to ``width`` channels, bilinear upsampling to the trunk's
    resolution. Its MACs shrink 4x per level, so it adds little time."""

    def __init__(self, width: int, levels: int) -> None:
        super().__init__()
        channels = [width] + [2 * width] * levels
        self.downs = nn.ModuleList(ConvBN(channels[i], channels[i + 1], stride=2) for i in range(levels))
        self.blocks = nn.ModuleList(ResBlock(channels[i + 1]) for i in range(levels))
        self.up = nn.Conv2d(channels[-1], width, 1)
        self.factor = 2**levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for down, block in zip(self.downs, self.blocks, strict=True):
            x = block(down(x))
        return F.interpolate(self.up(x), scale_factor=float(self.factor), mode="bilinear", align_corners=False)


@GENERATORS.register("student_fast")
class FastStudent(Generator):
    """Parametric student built for CPU and GPU speed: out = (1 + a) * x + b, a and b predicted at 1/scale.

    Args:
        width: channels of the trunk at 1/scale resolution (the context path doubles them per level).
        blocks: residual blocks (two dense 3x3 convs each) at 1/scale resolution.
        context: coarse levels below the trunk (0 = none); each halves the resolution once more.
        scale: 2 | 4: space-to-depth factor; the trunk runs at 1/scale of the input's resolution.
        residual: accepted for the common generator interface; the parametric output is residual by
            construction (zero-initialised head), so True and False build the same network.
        edit_mask: do no harm by design (``nets.base.Generator``): the head also predicts an edit-map logit z
            per full-resolution pixel and out = x + sigmoid(z) * (a * x + b).
    """

    value_range = UNIT

    def __init__(self, width: int = 48, blocks: int = 3, context: int = 2, scale: int = 4,
                 residual: bool = False, edit_mask: bool = False) -> None:
        super().__init__(True, edit_mask)  # forward_padded returns the change; the base adds x and clamps
        check_fast_student_args(width, blocks, context, scale)
        self.width, self.n_blocks, self.n_context, self.scale = width, blocks, context, scale
        self.stride = scale * 2**context
        cell = 3 * scale**2
        self.stem = ConvBN(cell, width)
        self.blocks = nn.Sequential(*[ResBlock(width) for _ in range(blocks)])
        self.context = Context(width, context) if context else None
        self.head = nn.Conv2d(width, 2 * cell + (scale**2 if self.splits_edit_channel else 0), 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward_padded(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The change ``a * x + b`` at full resolution (and the edit logit z as channel 3 with ``edit_mask``);
        the base class applies the edit map, adds ``x`` and clamps to [0, 1]."""
        cells = F.pixel_unshuffle(x, self.scale)
        features = self.blocks(self.stem(cells))
        if self.context is not None:
            features = features + self.context(features)
        params = self.head(features)
        cell = cells.shape[1]
        change = torch.addcmul(params[:, cell : 2 * cell], params[:, :cell], cells)
        if self.splits_edit_channel:  # the edit logit of each pixel becomes output channel 3 (split by the base)
            change = torch.cat([change, params[:, 2 * cell :]], dim=1)
        return F.pixel_shuffle(change, self.scale)

    @torch.no_grad()
    def fuse(self) -> FastStudent:
        """Fold every BatchNorm into its convolution (inference only: call on an eval-mode model); returns self."""
        if self.training:
            raise ConfigError("fuse() folds BatchNorm statistics for inference: call model.eval() first")
        for module in self.modules():
            if isinstance(module, ConvBN):
                module.fuse()
        return self


def check_fast_student_args(width: int, blocks: int, context: int, scale: int) -> None:
    """Reject sizes that cannot build, with the reason and a valid example."""
    for name, value, low in (("width", width, 1), ("blocks", blocks, 0), ("context", context, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"student_fast {name} must be an integer >= {low}, got {value!r} "
                              "(e.g. width 48, blocks 3, context 2)")
    if scale not in SCALES:
        raise ConfigError(f"student_fast scale must be one of {', '.join(map(str, SCALES))}, got {scale!r}")
