"""Camera effects for the synthetic pairs: resampling, lens blur, sensor noise and JPEG compression.

They are applied identically to input and target (one random draw, the same noise realisation), so they are part
of the photo, never a defect. The optics (resampling, blur) also move the defects' footprint, so the caller can
heal exactly the pixels a defect reaches, the way a retoucher edits the camera's JPEG.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torchvision.io import decode_jpeg, encode_jpeg
from torchvision.transforms.functional import gaussian_blur

from gan_retouch.synth.noise import Draws


def _resample(images: torch.Tensor, factor: float) -> torch.Tensor:
    size = images.shape[-2:]
    small = (max(8, round(size[0] * factor)), max(8, round(size[1] * factor)))
    down = F.interpolate(images, size=small, mode="bilinear", antialias=True, align_corners=False)
    return F.interpolate(down, size=size, mode="bilinear", align_corners=False)


def _jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    pixels = (image * 255.0).round().clamp(0, 255).to(torch.uint8)
    with warnings.catch_warnings():  # torchvision flags its codecs as deprecated in favour of torchcodec
        warnings.simplefilter("ignore", DeprecationWarning)
        return decode_jpeg(encode_jpeg(pixels, quality=quality)).to(torch.float32) / 255.0


def apply_camera(
    images: torch.Tensor, footprint: torch.Tensor, draws: Draws
) -> tuple[torch.Tensor, torch.Tensor]:
    """``[N,3,H,W]`` images of one scene -> the same camera's photos of them, and the ``[1,1,H,W]`` footprint
    moved by the same optics (noise and JPEG touch the images only)."""
    if draws.chance(0.4):
        factor = draws.uniform(0.45, 0.9)
        images, footprint = _resample(images, factor), _resample(footprint, factor)
    if draws.chance(0.4):
        sigma = draws.uniform(0.3, 1.0) * images.shape[-1] / 256
        if sigma > 0.25:
            kernel = 2 * int(3 * sigma) + 1
            images = gaussian_blur(images, [kernel, kernel], [sigma, sigma])
            footprint = gaussian_blur(footprint, [kernel, kernel], [sigma, sigma])
    if draws.chance(0.7):
        height, width = images.shape[-2:]
        luma = torch.randn((1, 1, height, width), generator=draws.generator) * draws.uniform(0.003, 0.02)
        chroma = torch.randn((1, 3, height, width), generator=draws.generator) * draws.uniform(0.0, 0.008)
        images = images + luma + chroma
    images = images.clamp(0.0, 1.0)
    if draws.chance(0.5):
        quality = draws.integer(60, 95)
        images = torch.stack([_jpeg(image, quality) for image in images])
    return images, footprint
