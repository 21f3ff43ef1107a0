"""Paired augmentation: one geometry for input, target and masks; corruptions on the input only.

Every random draw comes from the ``torch.Generator`` the caller passes (seeded per item), never from the global
RNG, so an augmented item is bit-identical whenever it is loaded. The images of a pair are stacked along the
channel axis and transformed as one tensor, which makes misalignment impossible by construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from gan_retouch.errors import ConfigError, DataError
from gan_retouch.values import is_number

IMAGE_KEYS = ("input", "target", "mask", "skin")


@dataclass(frozen=True)
class AugmentOptions:
    """The training-time augmentation a recipe switches on (``data.crop``, ``data.resize``, ``data.augment``)."""

    crop: int | None = None
    resize: int | None = None
    max_side: int | None = None
    hflip: bool = False
    rotate: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    salt_pepper: float = 0.0

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> AugmentOptions:
        """Read and check the options from the resolved ``options["data"]`` mapping."""
        augment = data.get("augment") or {}
        options = cls(
            crop=data.get("crop"),
            resize=data.get("resize"),
            max_side=data.get("max_side"),
            hflip=bool(augment.get("hflip", False)),
            rotate=float(augment.get("rotate", 0.0)),
            scale=_scale_range(augment.get("scale", [1.0, 1.0])),
            salt_pepper=float(augment.get("salt_pepper", 0.0)),
        )
        for key, value in (("data.crop", options.crop), ("data.resize", options.resize),
                           ("data.max_side", options.max_side)):
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ConfigError(f"{key} must be a positive number of pixels or null, got {value!r}")
        if not 0.0 <= options.rotate <= 180.0:
            raise ConfigError(f"data.augment.rotate must be between 0 and 180 degrees, got {options.rotate}")
        if not 0.0 <= options.salt_pepper < 1.0:
            raise ConfigError(f"data.augment.salt_pepper must be a fraction in [0, 1), got {options.salt_pepper}")
        return options


def _scale_range(value: Any) -> tuple[float, float]:
    """``data.augment.scale`` as ``(min, max)`` zoom factors with 0.25 <= min <= max <= 4."""
    if (
        not isinstance(value, (list, tuple)) or len(value) != 2
        or not all(is_number(v) for v in value)
        or not 0.25 <= value[0] <= value[1] <= 4.0
    ):
        raise ConfigError(f"data.augment.scale must be [min, max] zoom factors with 0.25 <= min <= max <= 4 "
                          f"(1 = off; [0.5, 1.0] shows defects at up to half their size), got {value!r}")
    return float(value[0]), float(value[1])


def _zoom(stack: torch.Tensor, factor: float) -> torch.Tensor:
    """The stack resized by ``factor`` (antialiased when shrinking), so the model sees features at new pixel scales."""
    height, width = stack.shape[-2:]
    size = (max(1, round(height * factor)), max(1, round(width * factor)))
    return F.interpolate(stack[None], size=size, mode="bilinear", antialias=factor < 1, align_corners=False)[0]


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _randint(generator: torch.Generator, high: int) -> int:
    """An integer in [0, high]."""
    return int(torch.randint(0, high + 1, (), generator=generator))


def _rotated_crop(stack: torch.Tensor, top: int, left: int, size: tuple[int, int], degrees: float) -> torch.Tensor:
    """The window at (top, left) of the given size, rotated about its centre; borders reflect the image."""
    channels, height, width = stack.shape
    out_h, out_w = size
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    ys = torch.arange(out_h, dtype=torch.float32) - (out_h - 1) / 2
    xs = torch.arange(out_w, dtype=torch.float32) - (out_w - 1) / 2
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    centre_y, centre_x = top + (out_h - 1) / 2, left + (out_w - 1) / 2
    source_x = centre_x + cos * xx - sin * yy
    source_y = centre_y + sin * xx + cos * yy
    # pixel coordinates -> grid_sample's [-1, 1] (align_corners=False: pixel centres at (2i + 1) / n - 1)
    grid = torch.stack(((2 * source_x + 1) / width - 1, (2 * source_y + 1) / height - 1), dim=-1)
    sampled = F.grid_sample(
        stack[None], grid[None], mode="bilinear", padding_mode="reflection", align_corners=False
    )
    return sampled[0]


def fit_max_side(stack: torch.Tensor, max_side: int | None) -> torch.Tensor:
    """The stack scaled down (antialiased, aspect kept) so that its longer side is at most ``max_side``: the scale
    at which a model with that working size sees a photo (``inference``), so that it trains at the same scale."""
    height, width = stack.shape[-2:]
    if max_side is None or max(height, width) <= max_side:
        return stack
    return _zoom(stack, max_side / max(height, width))


def augment_stack(stack: torch.Tensor, options: AugmentOptions, generator: torch.Generator) -> torch.Tensor:
    """Resize, zoom, crop, rotate and flip a ``[C,H,W]`` stack of aligned images (one geometry for all channels).

    The random zoom never goes below the crop (without ``data.crop``, the image's own size, so batches always
    stack): a zoom that would make the image smaller is raised to the smallest one that still fits it.
    """
    if options.resize is not None and stack.shape[-2:] != (options.resize, options.resize):
        stack = F.interpolate(
            stack[None], size=(options.resize, options.resize), mode="bilinear", antialias=True, align_corners=False
        )[0]
    stack = fit_max_side(stack, options.max_side)
    out_h, out_w = (options.crop, options.crop) if options.crop else stack.shape[-2:]
    if options.scale != (1.0, 1.0):
        fits = max(out_h / stack.shape[-2], out_w / stack.shape[-1])
        factor = max(_uniform(generator, *options.scale), fits)
        if factor != 1.0:
            stack = _zoom(stack, factor)
    height, width = stack.shape[-2:]
    if out_h > height or out_w > width:
        raise DataError(
            f"a {height}x{width} image is smaller than data.crop={options.crop}: lower data.crop, "
            f"or set data.resize to at least {options.crop}"
        )
    top, left = _randint(generator, height - out_h), _randint(generator, width - out_w)
    degrees = _uniform(generator, -options.rotate, options.rotate) if options.rotate > 0 else 0.0
    flip = options.hflip and bool(torch.rand((), generator=generator) < 0.5)
    if degrees != 0.0:
        stack = _rotated_crop(stack, top, left, (out_h, out_w), degrees)
    else:
        stack = stack[:, top : top + out_h, left : left + out_w]
    if flip:
        stack = stack.flip(-1)
    return stack.contiguous()


def salt_and_pepper(image: torch.Tensor, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Set a random ``fraction`` of pixels (all channels) to black or white: the light noise used in practice."""
    if fraction <= 0:
        return image
    height, width = image.shape[-2:]
    hit = torch.rand((height, width), generator=generator) < fraction
    white = torch.rand((height, width), generator=generator) < 0.5
    noisy = image.clone()
    noisy[:, hit] = white[hit].to(image.dtype)
    return noisy


def augment_item(item: dict[str, Any], options: AugmentOptions, generator: torch.Generator) -> dict[str, Any]:
    """Apply the paired augmentation to a dataset item (``input``, ``target``, optional ``mask``, ``skin``)."""
    keys = [key for key in IMAGE_KEYS if key in item]
    stack = torch.cat([item[key] for key in keys], dim=0)
    stack = augment_stack(stack, options, generator)
    out = dict(item)
    start = 0
    for key in keys:
        channels = item[key].shape[0]
        out[key] = stack[start : start + channels]
        start += channels
    out["input"] = salt_and_pepper(out["input"], options.salt_pepper, generator)
    return out
