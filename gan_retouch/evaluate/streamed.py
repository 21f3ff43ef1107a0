"""The metrics of ``gan_retouch.metrics`` for one full-resolution pair, accumulated band by band.

The whole-image functions hold a dozen float copies of a photo at once (SSIM's filtered maps, MS-SSIM's); here
each band of rows is converted, scored and dropped, so the memory is a few bands plus MS-SSIM's half-size copies
(a quarter of the pixels each). The values are those of ``metrics.compute_metrics`` up to float rounding:

- PSNR, PSNR-Y, RMSE and the masked PSNRs are sums of squared errors over pixels (summed in float64 here);
- SSIM is the mean of its map over the positions where the 11 px window fits; a band of rows plus the 10 rows
  below it gives exactly its rows of that map, so the sums over bands are the whole map's sum;
- MS-SSIM pools the images 2x2 (zero padding on odd sides, as pytorch-msssim does) between scales; the first
  pooled copy is built from bands whose boundaries fall between pooling windows, and each scale's SSIM and
  contrast terms are band sums as above;
- LPIPS (``evaluate.lpips_bands``) runs its network on bands with enough rows around them that each band's
  share of every feature map is the whole image's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pytorch_msssim.ssim import _fspecial_gauss_1d, _ssim

from gan_retouch.evaluate.bands import Pixels, bands
from gan_retouch.metrics import (
    MS_SSIM_WEIGHTS,
    MSE_FLOOR,
    SIGMA,
    WINDOW,
    check_window,
    ms_ssim_scales,
    rgb_to_y,
)

HALO = WINDOW - 1  # rows below a band that its SSIM map rows need


def _psnr(mse: float) -> float:
    return 10.0 * math.log10(1.0 / max(mse, MSE_FLOOR))


def _window(channels: int) -> torch.Tensor:
    return _fspecial_gauss_1d(WINDOW, SIGMA).repeat(channels, 1, 1, 1)


class SsimSums:
    """Sums of one scale's SSIM and contrast maps over bands, per channel (float64)."""

    def __init__(self, width: int) -> None:
        self.ssim = torch.zeros(3, dtype=torch.float64)
        self.contrast = torch.zeros(3, dtype=torch.float64)
        self.count = 0
        self.width = width

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Add the map rows of a band ``[1,3,h,W]`` that includes the ``HALO`` rows below its own."""
        if x.shape[-2] < WINDOW:
            return  # rows whose window does not fit: no map rows
        ssim, contrast = _ssim(x, y, data_range=1.0, win=_window(x.shape[1]), size_average=False)
        positions = (x.shape[-2] - HALO) * (self.width - HALO)
        self.ssim += ssim[0].double() * positions
        self.contrast += contrast[0].double() * positions
        self.count += positions

    def means(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.ssim / self.count, self.contrast / self.count


def _banded_ssim(x: torch.Tensor, y: torch.Tensor) -> SsimSums:
    """SSIM sums of two whole float images ``[1,3,H,W]`` (the pooled scales of MS-SSIM), band by band."""
    height, width = x.shape[-2:]
    sums = SsimSums(width)
    for top, bottom in bands(height, width):
        end = min(bottom + HALO, height)
        sums.add(x[..., top:end, :], y[..., top:end, :])
    return sums


def _pool(band: torch.Tensor, pad_top: int, pad_left: int) -> torch.Tensor:
    """2x2 average pooling of a band whose rows start on a pooling window, with pytorch-msssim's zero padding."""
    return F.avg_pool2d(F.pad(band, (pad_left, 0, pad_top, 0)), kernel_size=2)


class PairSums:
    """Everything the metrics of one (output, target) pair need, from one pass over bands of rows."""

    def __init__(self, height: int, width: int, scales: int, y_channel: bool) -> None:
        self.pixels = height * width
        self.squared = 0.0
        self.squared_y = 0.0 if y_channel else None
        self.masked = [0.0, 0.0, 0.0, 0.0]  # inside: error, weight; outside: error, weight
        self.ssim = SsimSums(width)
        self.pad = (height % 2, width % 2)
        shape = ((height + self.pad[0]) // 2, (width + self.pad[1]) // 2)
        self.pooled = [torch.empty(1, 3, *shape), torch.empty(1, 3, *shape)] if scales > 1 else None

    def add(self, x: torch.Tensor, y: torch.Tensor, rows: int, top: int, mask: torch.Tensor | None) -> None:
        """A band at ``top`` of ``rows`` own rows, followed by up to ``HALO`` more rows (for SSIM)."""
        own_x, own_y = x[..., :rows, :], y[..., :rows, :]
        self.squared += float((own_x - own_y).pow(2).sum(dtype=torch.float64))
        if self.squared_y is not None:
            self.squared_y += float((rgb_to_y(own_x) - rgb_to_y(own_y)).pow(2).sum(dtype=torch.float64))
        if mask is not None:
            error = (own_x - own_y).pow(2).mean(1, keepdim=True)
            for index, weight in enumerate((mask, 1.0 - mask)):
                self.masked[2 * index] += float((error * weight).sum(dtype=torch.float64))
                self.masked[2 * index + 1] += float(weight.sum(dtype=torch.float64))
        self.ssim.add(x, y)
        if self.pooled is not None:
            pad_top = self.pad[0] if top == 0 else 0
            start = (top + self.pad[0]) // 2
            for pooled, band in ((self.pooled[0], own_x), (self.pooled[1], own_y)):
                small = _pool(band, pad_top, self.pad[1])
                pooled[..., start : start + small.shape[-2], :] = small


def _ms_ssim(sums: PairSums, scales: int) -> float:
    """MS-SSIM from the first scale's sums and the pooled copies (``metrics.ms_ssim``'s formula)."""
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], dtype=torch.float64)
    if scales < len(MS_SSIM_WEIGHTS):
        weights = weights / weights.sum()
    level, terms = sums.ssim, []
    x, y = sums.pooled if sums.pooled is not None else (None, None)
    for scale in range(scales):
        if scale > 0:
            level = _banded_ssim(x, y)
            if scale < scales - 1:
                padding = [s % 2 for s in x.shape[2:]]
                x = F.avg_pool2d(x, kernel_size=2, padding=padding)
                y = F.avg_pool2d(y, kernel_size=2, padding=padding)
        ssim, contrast = level.means()
        terms.append(torch.relu(ssim if scale == scales - 1 else contrast))
    stacked = torch.stack(terms)  # [scales, C]
    return float(torch.prod(stacked ** weights.view(-1, 1), dim=0).mean())


@torch.no_grad()
def streamed_metrics(output: Pixels, target: Pixels, mask: Pixels | None = None,
                     lpips_model: torch.nn.Module | None = None, y_channel: bool = False) -> dict[str, float]:
    """``metrics.compute_metrics`` of one pair (its keys, in its order) as floats, band by band."""
    height, width = output.height, output.width
    check_window(torch.empty(0, 0, height, width), "SSIM")
    scales = ms_ssim_scales(height, width)
    sums = PairSums(height, width, scales, y_channel)
    for top, bottom in bands(height, width, 2, sums.pad[0]):
        end = min(bottom + HALO, height)
        sums.add(output.rows(top, end), target.rows(top, end), bottom - top, top,
                 mask.rows(top, bottom) if mask is not None else None)
    mse = sums.squared / (3 * sums.pixels)
    row = {"psnr": _psnr(mse)}
    if sums.squared_y is not None:
        row["psnr_y"] = _psnr(sums.squared_y / sums.pixels)
    ssim, _ = sums.ssim.means()
    row["ssim"] = float(ssim.mean())
    row["ms_ssim"] = _ms_ssim(sums, scales)
    row["rmse"] = math.sqrt(mse) * 255.0
    row["score"] = 0.5 * row["psnr"] / 100.0 + 0.5 * row["ms_ssim"]
    if lpips_model is not None:
        from gan_retouch.evaluate.lpips_bands import banded_lpips

        row["lpips"] = banded_lpips(lpips_model, output, target)
    if mask is not None:
        for key, (error, area) in (("psnr_mask", sums.masked[:2]), ("psnr_clean", sums.masked[2:])):
            row[key] = _psnr(error / max(area, 1e-12)) if area > 0 else math.nan
    return row
