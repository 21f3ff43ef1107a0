"""Full-resolution images read, written and compared in bands of rows, so `gan-retouch test` never holds more
than one float copy of a photo per role (its input and each output); targets stay as decoded pixels (uint8).

A ``Pixels`` is an image in whatever form it is kept (decoded uint8/uint16, or float) with the conversion that
turns any band of its rows into float RGB (or one mask channel) in [0, 1]; the metrics (``evaluate.streamed``),
the heatmaps and the PNG files are all computed band by band from it. Per pixel, a band's work gives the same
values as the whole image's (the same operations in the same order), so the saved files are identical.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gan_retouch.imaging import to_uint8

BAND_PIXELS = 1 << 17  # pixels per band of rows: SSIM's dozen float maps of a band stay a few MB
MIN_BAND_ROWS = 32  # rows per band at least, however wide the image
# Colour ramp of the difference heatmaps (black -> purple -> orange -> yellow -> white), like 'inferno'.
HEATMAP_COLOURS = ((0, 0, 0), (40, 11, 84), (101, 21, 110), (159, 42, 99), (212, 72, 66),
                   (245, 125, 21), (250, 193, 39), (252, 255, 164))


def as_float(part: torch.Tensor) -> torch.Tensor:
    """The conversion of an image kept as float already."""
    return part


@dataclass
class Pixels:
    """``data`` ``[C,H,W]`` as kept, and ``convert``: a band of its rows -> float ``[C',h,W]`` in [0, 1]."""

    data: torch.Tensor
    convert: Callable[[torch.Tensor], torch.Tensor] = as_float
    device: torch.device | None = None  # where the converted bands go

    @property
    def height(self) -> int:
        return int(self.data.shape[-2])

    @property
    def width(self) -> int:
        return int(self.data.shape[-1])

    def rows(self, top: int, bottom: int) -> torch.Tensor:
        """Rows ``[top, bottom)`` as float ``[1,C',h,W]``."""
        band = self.convert(self.data[:, top:bottom]).float()[None]  # converted where decoded (uint16 included)
        return band if self.device is None else band.to(self.device)

    def whole(self) -> torch.Tensor:
        """The whole image as float ``[1,C',H,W]``, built band by band (no intermediate full-size copy)."""
        first = self.rows(0, min(self.height, band_height(self.width)))
        whole = first.new_empty((1, first.shape[1], self.height, self.width))
        for top, bottom in bands(self.height, self.width):
            whole[..., top:bottom, :] = first if top == 0 else self.rows(top, bottom)
        return whole


def band_height(width: int, multiple: int = 2, least: int = MIN_BAND_ROWS) -> int:
    """Rows per band for images ``width`` px wide: about ``BAND_PIXELS`` pixels and at least ``least`` rows (halos
    stay a small part of a band), a multiple of ``multiple``."""
    return max(multiple, max(least, BAND_PIXELS // max(1, width)) // multiple * multiple)


def bands(height: int, width: int, multiple: int = 2, offset: int = 0,
          least: int = MIN_BAND_ROWS) -> list[tuple[int, int]]:
    """``(top, bottom)`` spans covering ``[0, height)``; every inner boundary ``b`` has ``(b + offset) % multiple
    == 0`` (pooling windows and network strides then never straddle two bands)."""
    step = band_height(width, multiple, least)
    cuts = [0, *(b for b in range(step - offset, height, step) if b > 0), height]
    return [(top, bottom) for top, bottom in zip(cuts, cuts[1:], strict=False) if bottom > top]


def heatmap(output: torch.Tensor, target: torch.Tensor, gain: float) -> torch.Tensor:
    """``[3,H,W]`` colour map of ``gain * |output - target|`` (mean over RGB; black = equal, white = >= 1/gain)."""
    error = ((output - target).abs().mean(0) * gain).clamp(0, 1)
    colours = torch.tensor(HEATMAP_COLOURS, dtype=torch.float32, device=error.device) / 255.0
    position = error * (len(HEATMAP_COLOURS) - 1)
    low = position.floor().long().clamp(max=len(HEATMAP_COLOURS) - 2)
    fraction = (position - low).unsqueeze(-1)
    rgb = colours[low] * (1 - fraction) + colours[low + 1] * fraction
    return rgb.permute(2, 0, 1)


def save_banded(path: Path, height: int, width: int, band: Callable[[int, int], torch.Tensor]) -> None:
    """Write an 8-bit RGB image whose rows ``[top, bottom)`` are ``band(top, bottom)`` (float ``[3,h,W]`` in
    [0, 1]): one uint8 buffer of the image, the format from the extension."""
    buffer = np.empty((height, width, 3), dtype=np.uint8)
    for top, bottom in bands(height, width):
        buffer[top:bottom] = to_uint8(band(top, bottom)).permute(1, 2, 0).cpu().numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.frombuffer("RGB", (width, height), buffer, "raw", "RGB", 0, 1).save(path)


def save_pixels(path: Path, image: Pixels) -> None:
    """``image`` as an 8-bit PNG (the same file ``imaging.save_image`` writes for its float form)."""
    save_banded(path, image.height, image.width, lambda top, bottom: image.rows(top, bottom)[0])


def save_heatmap(path: Path, output: Pixels, target: Pixels, gain: float) -> None:
    """The ``heatmap`` of ``output`` against ``target``, computed and written band by band."""
    save_banded(path, output.height, output.width,
                lambda top, bottom: heatmap(output.rows(top, bottom)[0], target.rows(top, bottom)[0], gain))
