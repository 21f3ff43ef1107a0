"""Pixel terms: mse, l1, charbonnier, psnr, color (all mask-aware), and ssim, msssim, score (whole-image).

Images are in [0, 1] (data range 1). The mask-aware terms take ``mask`` (none | given | hard | soft),
``mask_weight``, ``outside_weight`` and ``threshold`` (None = the source's default; see ``masks.MaskWeighting``).
"""

from __future__ import annotations

import math

import torch
from pytorch_msssim import ssim
from torchvision.transforms.functional import gaussian_blur

from gan_retouch.errors import ConfigError
from gan_retouch.losses.base import LossContext, LossTerm
from gan_retouch.losses.masks import MaskWeighting
from gan_retouch.metrics import MSE_FLOOR, masked_psnr, ms_ssim, psnr  # ms_ssim: fewer scales on small images
from gan_retouch.registry import LOSSES

SSIM_WINDOW = 11


class MaskedPixelTerm(LossTerm):
    """Base of the mask-aware terms: subclasses give a per-pixel loss map; the mask weights reduce it."""

    name = "pixel"

    def __init__(
        self, mask: str = "none", mask_weight: float = 1.0, outside_weight: float = 1.0, threshold: float | None = None
    ) -> None:
        super().__init__()
        self.weighting = MaskWeighting(self.name, mask, mask_weight, outside_weight, threshold)

    def loss_map(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, ctx: LossContext) -> torch.Tensor:
        return self.weighting.reduce(self.loss_map(ctx.output, ctx.target), ctx)


@LOSSES.register("mse")
class MSELoss(MaskedPixelTerm):
    """Mean squared error (mask-aware)."""

    name = "mse"

    def loss_map(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (output - target).square()


@LOSSES.register("l1")
class L1Loss(MaskedPixelTerm):
    """Mean absolute error (mask-aware)."""

    name = "l1"

    def loss_map(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (output - target).abs()


@LOSSES.register("charbonnier")
class CharbonnierLoss(MaskedPixelTerm):
    """Charbonnier sqrt((output - target)^2 + eps^2), a smooth L1 (mask-aware); eps default 1e-3."""

    name = "charbonnier"

    def __init__(
        self,
        eps: float = 1e-3,
        mask: str = "none",
        mask_weight: float = 1.0,
        outside_weight: float = 1.0,
        threshold: float | None = None,
    ) -> None:
        super().__init__(mask, mask_weight, outside_weight, threshold)
        if eps <= 0:
            raise ConfigError(f"charbonnier eps must be > 0, got {eps}")
        self.eps = eps

    def loss_map(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ((output - target).square() + self.eps**2).sqrt()


@LOSSES.register("psnr")
class PSNRLoss(MaskedPixelTerm):
    """-PSNR in dB (``metrics.psnr``: mean over RGB, data range 1, capped at 100 dB), per image then averaged.

    Mask-aware through ``metrics.masked_psnr`` (a weighted MSE); an image whose weights are all zero (an empty
    mask with ``outside_weight: 0``) counts as perfect, like an exact reconstruction.
    """

    name = "psnr"

    def forward(self, ctx: LossContext) -> torch.Tensor:
        weights = self.weighting.weights(ctx)
        if weights is None:
            return -psnr(ctx.output, ctx.target).mean()
        value = masked_psnr(ctx.output, ctx.target, weights, inside=True)
        return -value.nan_to_num(nan=-10.0 * math.log10(MSE_FLOOR)).mean()


@LOSSES.register("color")
class ColorLoss(MaskedPixelTerm):
    """Blurred-colour L1 (WESPE/DPED colour loss): |blur(output) - blur(target)|, Gaussian ``sigma`` px (3).

    It compares local average colour and ignores fine texture, so it fights tone/colour shifts without
    fighting the texture terms. Mask-aware. (Chosen over the RGB-angle loss, undefined on black pixels.)
    """

    name = "color"

    def __init__(
        self,
        sigma: float = 3.0,
        mask: str = "none",
        mask_weight: float = 1.0,
        outside_weight: float = 1.0,
        threshold: float | None = None,
    ) -> None:
        super().__init__(mask, mask_weight, outside_weight, threshold)
        if sigma <= 0:
            raise ConfigError(f"color sigma must be > 0 pixels, got {sigma}")
        self.sigma = sigma
        self.kernel = 2 * int(3 * sigma) + 1

    def blur(self, x: torch.Tensor) -> torch.Tensor:
        kernel = min(self.kernel, 2 * ((min(x.shape[-2:]) - 1) // 2) + 1)  # reflect padding needs kernel < side
        return gaussian_blur(x, [kernel, kernel], [self.sigma, self.sigma])

    def loss_map(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (self.blur(output) - self.blur(target)).abs()


@LOSSES.register("ssim")
class SSIMLoss(LossTerm):
    """1 - SSIM (pytorch-msssim, 11x11 Gaussian window, sigma 1.5, data range 1); whole-image, no mask."""

    def forward(self, ctx: LossContext) -> torch.Tensor:
        return 1.0 - ssim(ctx.output, ctx.target, data_range=1.0, size_average=True, win_size=SSIM_WINDOW)


@LOSSES.register("msssim")
class MSSSIMLoss(LossTerm):
    """1 - MS-SSIM (pytorch-msssim; fewer scales, renormalised, on images of 160 px or less); no mask."""

    def forward(self, ctx: LossContext) -> torch.Tensor:
        return 1.0 - ms_ssim(ctx.output, ctx.target).mean()


@LOSSES.register("score")
class ScoreLoss(LossTerm):
    """Competition score loss: (1 - MS-SSIM) - PSNR / psnr_scale (psnr_scale 50: 1 dB counts as 0.02 MS-SSIM).

    Minimising it maximises PSNR / psnr_scale + MS-SSIM; whole-image, no mask.
    """

    def __init__(self, psnr_scale: float = 50.0) -> None:
        super().__init__()
        if psnr_scale <= 0:
            raise ConfigError(f"score psnr_scale must be > 0 dB, got {psnr_scale}")
        self.psnr_scale = psnr_scale

    def forward(self, ctx: LossContext) -> torch.Tensor:
        psnr_db = psnr(ctx.output, ctx.target).mean()
        return (1.0 - ms_ssim(ctx.output, ctx.target).mean()) - psnr_db / self.psnr_scale
