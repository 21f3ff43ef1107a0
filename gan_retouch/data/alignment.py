"""Do input and target line up? A cheap check of each pair in the pre-check, on the pixels it decodes anyway.

Retouching changes pixels, not geometry: in a good pair every part of the target sits where it sits in the
input. Grey copies of the pair show the common mistakes of exported pairs:

- the identity SSIM on a copy whose longer side is ``COARSE_SIDE`` px: very low when the target is another photo;
- the best match by phase correlation in five windows of ``WINDOW`` px (centre and four towards the corners), on
  that copy and on one whose longer side is at most ``FINE_SIDE`` px: the same non-zero shift everywhere for a
  moved target, shifts that grow towards the edges for a target cropped and resized or rotated in an editor, and
  no clear match at all for another photo. Phase correlation whitens the spectrum, so what a retoucher changes
  (tone, colour, healed skin, smoothed cloth) does not move its peak; a window without structure (a flat
  background) has no clear peak and says nothing.

Shifts are in full-resolution pixels, to one pixel of the copy: on pairs larger than ``FINE_SIDE`` px, shifts
below about (longer side / FINE_SIDE) px are not seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

from gan_retouch.errors import ConfigError

MODES = ("warn", "error", "off")
COARSE_SIDE = 256  # px: longer side of the copy for the identity SSIM and the coarse windows
FINE_SIDE = 1024  # px: longest side at which fine shifts are measured (larger pairs are shrunk to it)
WINDOW = 128  # px: side of a phase-correlation window on either copy
CENTRES = ((0.5, 0.5), (0.2, 0.2), (0.2, 0.8), (0.8, 0.2), (0.8, 0.8))  # window centres, fractions of (H, W)
MIN_SSIM = 0.5  # identity SSIM below this: the target is probably another photo
MIN_PEAK = 0.15  # correlation peak of a clear match (unrelated content: 0.03-0.09; retouched pairs: 0.3-1)
MIN_STD = 1 / 255  # grey standard deviation of a window with structure to match


@dataclass(frozen=True)
class Window:
    """One window's best match: shift (dy, dx) in full-resolution px, peak height, and whether it has structure."""

    shift: tuple[int, int]
    peak: float
    textured: bool

    @property
    def clear(self) -> bool:
        return self.peak >= MIN_PEAK


@dataclass(frozen=True)
class Alignment:
    """What the check measured for one pair."""

    ssim: float
    fine: tuple[Window, ...]
    coarse: tuple[Window, ...]

    @property
    def moved(self) -> list[tuple[int, int]]:
        """The distinct non-zero shifts of the windows with a clear match."""
        return sorted({w.shift for w in self.fine + self.coarse if w.clear and w.shift != (0, 0)})

    @property
    def unmatched(self) -> bool:
        """Most windows with structure (on the coarse copy) match nowhere clearly: another photo."""
        textured = [w for w in self.coarse if w.textured]
        return bool(textured) and 2 * sum(not w.clear for w in textured) > len(textured)

    @property
    def aligned(self) -> bool:
        return self.ssim >= MIN_SSIM and not self.moved and not self.unmatched

    def describe(self) -> str:
        """What was measured and what to check, for a pair that is not aligned."""
        clear = {w.shift for w in self.fine + self.coarse if w.clear}
        if self.moved and clear == {self.moved[0]} and not self.unmatched:
            dy, dx = self.moved[0]
            return (f"the target is shifted by {dx:+d} px across and {dy:+d} px down (identity SSIM {self.ssim:.2f}): "
                    f"check for a crop, a canvas change or a moved layer in the editor")
        if self.moved:
            shown = ", ".join(f"({dx:+d}, {dy:+d})" for dy, dx in self.moved[:4])
            return (f"parts of the target are shifted by different amounts or match nowhere (x, y px: {shown}; "
                    f"identity SSIM {self.ssim:.2f}): check for a crop and resize, or a rotation, in the editor")
        return (f"identity SSIM {self.ssim:.2f} and no clear match between input and target: check that the target "
                f"is a retouch of this photo, not another one or a cropped and resized copy")


def alignment_mode(data: dict) -> str:
    """``data.alignment``: warn (the default) | error | off."""
    mode = data.get("alignment", "warn")
    if mode not in MODES:
        raise ConfigError(f"data.alignment must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def _shrink(pixels: torch.Tensor, side: int) -> torch.Tensor:
    """Decoded ``[C,H,W]`` pixels resized (antialiased) so that the longer side is at most ``side``."""
    height, width = pixels.shape[-2:]
    scale = side / max(height, width)
    if scale >= 1:
        return pixels
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    image = pixels if pixels.dtype == torch.uint8 else pixels.to(torch.float32)  # uint8: the fast resize
    return F.interpolate(image[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]


def _grey(pixels: torch.Tensor, side: int) -> torch.Tensor:
    """The green channel (most of the luminance; the only one of a grey image) as float ``[h,w]`` in [0, 1],
    shrunk so that max(h, w) <= side."""
    full = 65535.0 if pixels.dtype == torch.uint16 else 255.0
    shrunk = _shrink(pixels[:3] if pixels.shape[0] >= 3 else pixels[:1], side)
    return shrunk[1 if shrunk.shape[0] == 3 else 0].to(torch.float32) / full


def _ssim(a: torch.Tensor, b: torch.Tensor, window: int = 8) -> float:
    """Mean SSIM of two grey ``[h,w]`` images over ``window`` px squares every ``window // 2`` px (uniform
    weights; the constants of Wang et al. for range 1)."""
    c1, c2 = 0.01**2, 0.03**2
    window = min(window, *a.shape)
    stack = torch.stack((a, b, a * a, b * b, a * b))[:, None]
    mu_a, mu_b, aa, bb, ab = F.avg_pool2d(stack, window, stride=max(1, window // 2))[:, 0]
    var_a, var_b, cov = aa - mu_a**2, bb - mu_b**2, ab - mu_a * mu_b
    ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim.mean())


@lru_cache(maxsize=8)
def _hann(height: int, width: int) -> torch.Tensor:
    return torch.outer(torch.hann_window(height, periodic=False), torch.hann_window(width, periodic=False))


def _matches(a: torch.Tensor, b: torch.Tensor, factor: float) -> tuple[Window, ...]:
    """The best match of each pair of grey windows ``a[i]``, ``b[i]`` (``[N,h,w]``, pixels ``factor``
    full-resolution px wide): the integer shift that moves ``a[i]`` onto ``b[i]`` by phase correlation."""
    height, width = a.shape[-2:]
    hann = _hann(height, width)
    spectra = [torch.fft.rfft2((x - x.mean(dim=(-2, -1), keepdim=True)) * hann) for x in (a, b)]
    cross = spectra[1] * spectra[0].conj()
    surface = torch.fft.irfft2(cross / (cross.abs() + 1e-12), s=(height, width)).flatten(1)
    peaks, where = surface.max(dim=1)
    found = []
    for index, (peak, at) in enumerate(zip(peaks.tolist(), where.tolist(), strict=True)):
        dy, dx = divmod(at, width)
        dy, dx = dy - height if dy > height // 2 else dy, dx - width if dx > width // 2 else dx
        found.append(Window((round(dy * factor), round(dx * factor)), peak, float(a[index].std()) >= MIN_STD))
    return tuple(found)


def _corners(height: int, width: int, size: int) -> list[tuple[int, int]]:
    """Top-left corners of the ``size`` px windows centred (as far as they fit) on ``CENTRES``."""
    return [(min(max(0, round(fy * height) - size // 2), height - size),
             min(max(0, round(fx * width) - size // 2), width - size)) for fy, fx in CENTRES]


def _coarse_windows(a: torch.Tensor, b: torch.Tensor, factor: float) -> tuple[Window, ...]:
    """The windows of the coarse grey copies ``a`` and ``b`` (none for copies under 16 px)."""
    size = min(WINDOW, *a.shape) // 2 * 2
    if size < 16:
        return ()
    corners = _corners(*a.shape, size)

    def cut(image: torch.Tensor) -> torch.Tensor:
        return torch.stack([image[top : top + size, left : left + size] for top, left in corners])

    return _matches(cut(a), cut(b), factor)


def _fine_windows(source: torch.Tensor, target: torch.Tensor) -> tuple[Window, ...]:
    """The windows of the fine copies (at most ``FINE_SIDE`` px long); only the windows themselves are made."""
    height, width = source.shape[-2:]
    factor = max(1.0, max(height, width) / FINE_SIDE)
    size = min(WINDOW, int(height / factor), int(width / factor)) // 2 * 2
    if size < 16:
        return ()
    span = min(round(size * factor), height, width)  # full-resolution px per window side
    corners = _corners(height, width, span)

    def cut(image: torch.Tensor) -> torch.Tensor:
        return torch.stack([_grey(image[:, top : top + span, left : left + span], size) for top, left in corners])

    windows = cut(source)
    return _matches(windows, cut(target), span / windows.shape[-1])


def check_alignment(source: torch.Tensor, target: torch.Tensor) -> Alignment:
    """Measure how well the decoded ``[C,H,W]`` pixels of ``source`` and ``target`` (same size) line up."""
    coarse_a, coarse_b = _grey(source, COARSE_SIDE), _grey(target, COARSE_SIDE)
    factor = source.shape[-1] / coarse_a.shape[-1]
    return Alignment(_ssim(coarse_a, coarse_b), _fine_windows(source, target),
                     _coarse_windows(coarse_a, coarse_b, factor))
