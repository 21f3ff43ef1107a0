"""Small building blocks shared by the networks: the norm factory, activations and conv helpers."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from gan_retouch.errors import ConfigError
from gan_retouch.registry import choice
from gan_retouch.values import is_integer

NORMS = ("batch", "instance", "none")
UPSAMPLES = ("nearest", "bilinear", "transpose", "pixelshuffle")


def norm_factory(norm: str, key: str = "norm") -> Callable[[int], nn.Module]:
    """``channels -> norm layer`` for ``batch`` | ``instance`` (affine, like pix2pix's options) | ``none``."""
    choice(norm, NORMS, key)
    if norm == "batch":
        return nn.BatchNorm2d
    if norm == "instance":
        return lambda channels: nn.InstanceNorm2d(channels, affine=True)
    return lambda channels: nn.Identity()


def conv_bias(norm: str) -> bool:
    """A conv followed by BatchNorm needs no bias (the norm's shift replaces it); pix2pix's rule."""
    return norm != "batch"


def lrelu() -> nn.LeakyReLU:
    """LeakyReLU(0.2), the slope used by AutoRetouch, pix2pix discriminators and U-Net encoders."""
    return nn.LeakyReLU(0.2, inplace=False)


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    """A 3x3 convolution with 'same' padding."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=bias)


def upsample_x2(in_channels: int, out_channels: int, mode: str, key: str = "upsample") -> nn.Sequential:
    """Channel change + x2 upsampling: conv3x3 + LReLU then ``nearest``/``bilinear`` interpolation;
    ``transpose`` = ConvTranspose2d(4, stride 2) + LReLU; ``pixelshuffle`` = conv3x3 to 4x channels,
    PixelShuffle(2), LReLU."""
    choice(mode, UPSAMPLES, key)
    if mode in ("nearest", "bilinear"):
        return nn.Sequential(conv3x3(in_channels, out_channels), lrelu(), nn.Upsample(scale_factor=2, mode=mode))
    if mode == "transpose":
        return nn.Sequential(nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1), lrelu())
    return nn.Sequential(conv3x3(in_channels, out_channels * 4), nn.PixelShuffle(2), lrelu())


def check_positive(value: int, key: str, minimum: int = 1) -> int:
    """A ConfigError-raising check for integer network arguments (widths, depths, counts)."""
    if not is_integer(value) or value < minimum:
        raise ConfigError(f"{key} must be an integer >= {minimum}, got {value!r}")
    return value
