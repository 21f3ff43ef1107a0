"""Image-quality metrics for paired retouching, one value per image (``Tensor[N]``).

Conventions (the same everywhere in gan-retouch, documented in docs/evaluate.md):

- Images are float RGB ``[N,3,H,W]`` in [0, 1]; MAX is 1.
- PSNR is ``10 log10(1 / MSE)`` with the MSE averaged over the three RGB channels and all pixels of each image.
  Identical images would give infinity; the MSE is floored at 1e-10, so PSNR is capped at 100 dB and means stay
  finite. ``y_channel=True`` computes it on the Y channel of YCbCr instead, exactly like BasicSR's
  ``test_y_channel`` (ITU-R BT.601 studio swing: Y = 16 + 65.481 R + 128.553 G + 24.966 B on a 0-255 scale),
  with no border crop.
- SSIM and MS-SSIM use pytorch-msssim's Gaussian window (11 px, sigma 1.5, K = 0.01, 0.03), averaged over RGB.
  MS-SSIM needs a shorter side above 160 px for its 5 scales; smaller images use as many scales as fit
  (side > 10 * 2^(scales-1)) with the first weights renormalised to sum to 1 (one scale = non-negative SSIM).
- RMSE is reported in 8-bit levels (0-255), the unit people read it in.
- The competition score is 0.5 * PSNR / 100 + 0.5 * MS-SSIM.
"""

from __future__ import annotations

import math

import torch
from pytorch_msssim import ssim as _library_ssim
from pytorch_msssim.ssim import _fspecial_gauss_1d, _ssim  # the per-scale SSIM/contrast terms of MS-SSIM

from gan_retouch.errors import DataError

MSE_FLOOR = 1e-10  # caps PSNR at 100 dB
WINDOW = 11  # Gaussian window size of SSIM / MS-SSIM
SIGMA = 1.5
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, pytorch-msssim's default
Y_WEIGHTS = (65.481, 128.553, 24.966)  # BasicSR's rgb2ycbcr (y_only), RGB order, 0-255 scale


def _check_pair(output: torch.Tensor, target: torch.Tensor) -> None:
    if output.dim() != 4 or output.shape[1] != 3:
        raise DataError(f"metrics take RGB batches [N,3,H,W]; got shape {tuple(output.shape)}")
    if output.shape != target.shape:
        raise DataError(
            f"output {tuple(output.shape)} and target {tuple(target.shape)} differ in shape: "
            "metrics compare aligned pairs of the same size"
        )


def _mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (output.float() - target.float()).pow(2).flatten(1).mean(1)


def rgb_to_y(images: torch.Tensor) -> torch.Tensor:
    """``[N,3,H,W]`` RGB in [0, 1] -> ``[N,1,H,W]`` Y of YCbCr in [16/255, 235/255] (BasicSR's convention)."""
    weights = images.new_tensor(Y_WEIGHTS).view(1, 3, 1, 1)
    return ((images.float() * weights).sum(1, keepdim=True) + 16.0) / 255.0


def psnr(output: torch.Tensor, target: torch.Tensor, y_channel: bool = False) -> torch.Tensor:
    """PSNR in dB per image (MAX 1, MSE over RGB; or over Y of YCbCr when ``y_channel``), capped at 100 dB."""
    _check_pair(output, target)
    if y_channel:
        output, target = rgb_to_y(output), rgb_to_y(target)
    return 10.0 * torch.log10(1.0 / _mse(output, target).clamp_min(MSE_FLOOR))


def rmse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Root-mean-square error per image over RGB, in 8-bit levels (0-255)."""
    _check_pair(output, target)
    return _mse(output, target).sqrt() * 255.0


def masked_psnr(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, inside: bool) -> torch.Tensor:
    """PSNR restricted to the defect mask (``inside``) or to its complement; NaN where that region is empty.

    ``mask`` is ``[N,1,H,W]`` in [0, 1]; soft values weight pixels. Inside: did the model fix the blemishes?
    Outside: did it leave clean skin alone?
    """
    _check_pair(output, target)
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[-2:] != output.shape[-2:]:
        raise DataError(f"mask must be [N,1,H,W] matching the image {tuple(output.shape)}; got {tuple(mask.shape)}")
    weight = mask.float() if inside else 1.0 - mask.float()
    squared = (output.float() - target.float()).pow(2).mean(1, keepdim=True)
    area = weight.flatten(1).sum(1)
    mse = (squared * weight).flatten(1).sum(1) / area.clamp_min(1e-12)
    value = 10.0 * torch.log10(1.0 / mse.clamp_min(MSE_FLOOR))
    return torch.where(area > 0, value, torch.full_like(value, math.nan))


def check_window(output: torch.Tensor, what: str) -> None:
    if min(output.shape[-2:]) < WINDOW:
        raise DataError(
            f"{what} needs images of at least {WINDOW}x{WINDOW} px (its Gaussian window); got "
            f"{tuple(output.shape[-2:])}. Score larger images."
        )


def ssim(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM per image (pytorch-msssim, Gaussian window 11 / sigma 1.5, mean over RGB)."""
    _check_pair(output, target)
    check_window(output, "SSIM")
    return _library_ssim(output.float(), target.float(), data_range=1.0, size_average=False)


def ms_ssim_scales(height: int, width: int) -> int:
    """How many MS-SSIM scales fit an image: up to 5, while the shorter side exceeds 10 * 2^(scales-1)."""
    side = min(height, width)
    scales = 1
    while scales < len(MS_SSIM_WEIGHTS) and side > (WINDOW - 1) * 2**scales:
        scales += 1
    return scales


def ms_ssim(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MS-SSIM per image; identical to pytorch-msssim's ``ms_ssim`` for images above 160 px.

    Smaller images use fewer scales (see ``ms_ssim_scales``) with the leading weights renormalised, since
    pytorch-msssim refuses them; the per-scale terms still come from pytorch-msssim.
    """
    _check_pair(output, target)
    check_window(output, "MS-SSIM")
    x, y = output.float(), target.float()
    scales = ms_ssim_scales(*x.shape[-2:])
    weights = x.new_tensor(MS_SSIM_WEIGHTS[:scales])
    if scales < len(MS_SSIM_WEIGHTS):
        weights = weights / weights.sum()
    window = _fspecial_gauss_1d(WINDOW, SIGMA).to(x).repeat(x.shape[1], 1, 1, 1)
    terms = []
    for scale in range(scales):
        ssim_per_channel, contrast = _ssim(x, y, data_range=1.0, win=window, size_average=False)
        if scale < scales - 1:
            terms.append(torch.relu(contrast))
            padding = [s % 2 for s in x.shape[2:]]
            x = torch.nn.functional.avg_pool2d(x, kernel_size=2, padding=padding)
            y = torch.nn.functional.avg_pool2d(y, kernel_size=2, padding=padding)
    terms.append(torch.relu(ssim_per_channel))
    stacked = torch.stack(terms, dim=0)  # [scales, N, C]
    return torch.prod(stacked ** weights.view(-1, 1, 1), dim=0).mean(1)


def competition_score(psnr_db: torch.Tensor, ms_ssim_value: torch.Tensor) -> torch.Tensor:
    """The retouching competition's score: 0.5 * PSNR / 100 + 0.5 * MS-SSIM."""
    return 0.5 * psnr_db / 100.0 + 0.5 * ms_ssim_value


@torch.no_grad()
def lpips_distance(output: torch.Tensor, target: torch.Tensor, lpips_model: torch.nn.Module) -> torch.Tensor:
    """LPIPS per image; ``lpips_model`` comes from ``gan_retouch.losses.pretrained.build_lpips`` and takes
    images in [0, 1] (the package's contract), returning one distance per image."""
    _check_pair(output, target)
    return lpips_model(output.float(), target.float()).reshape(output.shape[0], -1).mean(1)


@torch.no_grad()
def compute_metrics(
    output: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    lpips_model: torch.nn.Module | None = None,
    y_channel: bool = False,
) -> dict[str, torch.Tensor]:
    """Every metric of a results-table row, each a ``Tensor[N]`` on the CPU.

    Keys: psnr, [psnr_y], ssim, ms_ssim, rmse, score, [lpips], [psnr_mask, psnr_clean] (inside / outside the
    defect mask). Optional keys appear only when asked for (y_channel, lpips_model) or possible (mask).
    """
    _check_pair(output, target)
    row = {"psnr": psnr(output, target)}
    if y_channel:
        row["psnr_y"] = psnr(output, target, y_channel=True)
    row["ssim"] = ssim(output, target)
    row["ms_ssim"] = ms_ssim(output, target)
    row["rmse"] = rmse(output, target)
    row["score"] = competition_score(row["psnr"], row["ms_ssim"])
    if lpips_model is not None:
        row["lpips"] = lpips_distance(output, target, lpips_model)
    if mask is not None:
        row["psnr_mask"] = masked_psnr(output, target, mask, inside=True)
        row["psnr_clean"] = masked_psnr(output, target, mask, inside=False)
    return {name: value.detach().float().cpu() for name, value in row.items()}
