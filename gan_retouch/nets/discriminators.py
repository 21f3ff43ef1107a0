"""Conditional PatchGAN discriminators: pix2pix's NLayerDiscriminator and pix2pixHD's multi-scale stack."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as add_spectral_norm

from gan_retouch.errors import ConfigError
from gan_retouch.imaging import to_signed
from gan_retouch.nets.layers import check_positive, conv_bias, norm_factory
from gan_retouch.registry import DISCRIMINATORS

DiscriminatorOutput = list[list[torch.Tensor]]


@DISCRIMINATORS.register("patchgan")
class PatchGAN(nn.Module):
    """pix2pix NLayerDiscriminator (70x70 patches at n_layers=3), conditional; returns [[features..., logits]].

    4x4 convs: ``n_layers`` stride-2 convs (ndf, 2ndf, ... capped at 8ndf), one stride-1 conv, then a 1-channel
    patch map. ``conditional`` concatenates the condition (the input image) with the judged image (6 channels).
    Inputs in [0, 1] are converted to [-1, 1] inside. ``spectral_norm`` wraps every conv (pix2pixHD / SNGAN).
    The intermediate feature maps (``layers.0``.. outputs) feed the feature-matching loss.
    """

    def __init__(
        self,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "batch",
        spectral_norm: bool = False,
        conditional: bool = True,
    ) -> None:
        super().__init__()
        check_positive(ndf, "patchgan ndf")
        self.n_layers = check_positive(n_layers, "patchgan n_layers")
        self.conditional = conditional
        make_norm, bias = norm_factory(norm), conv_bias(norm)

        def conv(in_channels: int, out_channels: int, stride: int, use_bias: bool = True) -> nn.Module:
            layer = nn.Conv2d(in_channels, out_channels, 4, stride=stride, padding=1, bias=use_bias)
            return add_spectral_norm(layer) if spectral_norm else layer

        widths = [ndf * min(2**i, 8) for i in range(n_layers + 1)]
        layers = [nn.Sequential(conv(6 if conditional else 3, ndf, 2), nn.LeakyReLU(0.2))]
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1
            layers.append(
                nn.Sequential(conv(widths[i - 1], widths[i], stride, bias), make_norm(widths[i]), nn.LeakyReLU(0.2))
            )
        layers.append(nn.Sequential(conv(widths[-1], 1, 1)))
        self.layers = nn.ModuleList(layers)

    @property
    def min_size(self) -> int:
        """The smallest input side that still gives a 1x1 patch map."""
        return 3 * 2**self.n_layers

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> DiscriminatorOutput:
        if min(image.shape[-2:]) < self.min_size:
            raise ConfigError(
                f"images of {tuple(image.shape[-2:])} are too small for a patchgan with n_layers={self.n_layers}: "
                f"it needs a side of at least {self.min_size} px. Use a larger data.crop or fewer n_layers."
            )
        x = to_signed(torch.cat([condition, image], dim=1) if self.conditional else image)
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return [features]


@DISCRIMINATORS.register("multiscale")
class MultiScale(nn.Module):
    """pix2pixHD multi-scale discriminator: num_D PatchGANs on 1x, 1/2x, ... average-pooled inputs.

    Same arguments as ``patchgan`` plus ``num_D``; returns one [features..., logits] list per scale, finest
    first. ``scales.0`` .. ``scales.{num_D-1}`` are the PatchGANs.
    """

    def __init__(
        self,
        num_D: int = 2,  # pix2pixHD's option name, kept for users of its recipes
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "batch",
        spectral_norm: bool = False,
        conditional: bool = True,
    ) -> None:
        super().__init__()
        check_positive(num_D, "multiscale num_D")
        self.scales = nn.ModuleList(
            PatchGAN(ndf, n_layers, norm, spectral_norm, conditional) for _ in range(num_D)
        )

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> DiscriminatorOutput:
        outputs: DiscriminatorOutput = []
        for index, scale in enumerate(self.scales):
            if index > 0:
                condition, image = (
                    F.avg_pool2d(t, 3, stride=2, padding=1, count_include_pad=False) for t in (condition, image)
                )
            outputs.extend(scale(condition, image))
        return outputs
