"""Paired augmentation: one geometry for input, target and masks; corruptions on the input only.

Every random draw comes from the ``torch.Generator`` the caller passes (seeded per item), never from the global
RNG, so an augmented item is bit-identical whenever it is loaded. The images of a pair are stacked along the
channel axis and transformed as one tensor, which makes misalignment impossible by construction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
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


@dataclass(frozen=True)
class Geometry:
    """One draw of the paired geometry: zoom, crop window (in zoomed pixels), rotation and flip."""

    factor: float
    zoomed: tuple[int, int]  # (height, width) of the whole image after the zoom
    top: int
    left: int
    size: tuple[int, int]  # (height, width) of the output
    degrees: float
    flip: bool


def side_scale(height: int, width: int, max_side: int | None) -> float:
    """The factor that brings an image's longer side to at most ``max_side`` (1 when it fits or when None)."""
    return max_side / max(height, width) if max_side and max(height, width) > max_side else 1.0


def draw_geometry(shape: tuple[int, int], options: AugmentOptions, generator: torch.Generator) -> Geometry:
    """The zoom, crop window, rotation and flip for an image of ``shape`` (height, width), drawn in a fixed order.

    ``data.max_side`` first scales a larger image down so that its longer side fits (the scale at which a model
    with that working size sees a photo, so that it trains at that scale); the random zoom multiplies that. The
    zoom never goes below the crop (without ``data.crop``, the image's own size, so batches always
    stack): a zoom that would make the image smaller is raised to the smallest one that still fits it.
    """
    height, width = shape
    base = side_scale(height, width, options.max_side)
    out_h, out_w = (options.crop, options.crop) if options.crop else (max(1, round(height * base)),
                                                                      max(1, round(width * base)))
    factor = base
    if options.scale != (1.0, 1.0):
        factor = max(base * _uniform(generator, *options.scale), out_h / height, out_w / width)
    height, width = shape if factor == 1.0 else (max(1, round(height * factor)), max(1, round(width * factor)))
    if out_h > height or out_w > width:
        scaled = f" (scaled by data.max_side={options.max_side} from {shape[0]}x{shape[1]})" if base < 1 else ""
        raise_side = (f", raise data.max_side to at least {math.ceil(options.crop * max(shape) / min(shape))}"
                      if base < 1 else "")
        raise DataError(f"a {height}x{width} image{scaled} is smaller than data.crop={options.crop}: lower "
                        f"data.crop{raise_side}, or set data.resize to at least {options.crop}")
    top, left = _randint(generator, height - out_h), _randint(generator, width - out_w)
    degrees = _uniform(generator, -options.rotate, options.rotate) if options.rotate > 0 else 0.0
    flip = options.hflip and bool(torch.rand((), generator=generator) < 0.5)
    return Geometry(factor, (height, width), top, left, (out_h, out_w), degrees, flip)


def _source_span(start: int, length: int, reach: int, zoomed: int, full: int) -> tuple[int, int, int]:
    """Along one axis: the source pixels [first, last) that a window of the zoomed image needs (with ``reach``
    zoomed px around it for a rotation, and the resampling filter's support), and the window's start in them."""
    low, high = max(0, start - reach), min(zoomed, start + length + reach)
    ratio = full / zoomed  # source pixels per zoomed pixel
    support = math.ceil(max(1.0, ratio)) + 1
    first = max(0, math.floor(low * ratio) - support)
    last = min(full, math.ceil(high * ratio) + support)
    return first, last, start - round(first / ratio)


def apply_geometry(parts: list[torch.Tensor], geometry: Geometry,
                   convert: Callable[[int, torch.Tensor], torch.Tensor] | None = None) -> list[torch.Tensor]:
    """The output of ``geometry`` for each of the aligned ``[C,H,W]`` images ``parts``.

    Only the source pixels the output window needs are cut, zoomed and rotated, so the cost follows the crop, not
    the image: a 128 px crop of a 4000 px photo costs what one of a 256 px image does. ``convert(i, region)``,
    when given, turns the region cut from ``parts[i]`` (decoded pixels) into float, so only it is converted.
    """
    full_h, full_w = parts[0].shape[-2:]
    (out_h, out_w), zoomed = geometry.size, geometry.zoomed
    reach = math.ceil((math.hypot(out_h, out_w) - min(out_h, out_w)) / 2) + 1 if geometry.degrees else 0
    if geometry.factor == 1.0:
        rows = (max(0, geometry.top - reach), min(full_h, geometry.top + out_h + reach))
        cols = (max(0, geometry.left - reach), min(full_w, geometry.left + out_w + reach))
        top, left = geometry.top - rows[0], geometry.left - cols[0]
    else:
        *rows, top = _source_span(geometry.top, out_h, reach, zoomed[0], full_h)
        *cols, left = _source_span(geometry.left, out_w, reach, zoomed[1], full_w)
    regions = [part[:, rows[0] : rows[1], cols[0] : cols[1]] for part in parts]
    if convert is not None:
        regions = [convert(index, region) for index, region in enumerate(regions)]
    stack = torch.cat(regions, dim=0)
    if geometry.factor != 1.0:
        size = (round((rows[1] - rows[0]) * zoomed[0] / full_h), round((cols[1] - cols[0]) * zoomed[1] / full_w))
        stack = F.interpolate(stack[None], size=size, mode="bilinear", antialias=geometry.factor < 1,
                              align_corners=False)[0]
        top, left = min(max(0, top), size[0] - out_h), min(max(0, left), size[1] - out_w)
    if geometry.degrees != 0.0:
        stack = _rotated_crop(stack, top, left, (out_h, out_w), geometry.degrees)
    else:
        stack = stack[:, top : top + out_h, left : left + out_w]
    if geometry.flip:
        stack = stack.flip(-1)
    return list(stack.contiguous().split([region.shape[0] for region in regions]))


def _resized(parts: list[torch.Tensor], options: AugmentOptions) -> list[torch.Tensor]:
    """``data.resize``: the whole images resized to the square size first (then cropped like any image)."""
    if options.resize is None or parts[0].shape[-2:] == (options.resize, options.resize):
        return parts
    stack = F.interpolate(torch.cat(parts, dim=0)[None], size=(options.resize, options.resize), mode="bilinear",
                          antialias=True, align_corners=False)[0]
    return list(stack.split([part.shape[0] for part in parts]))


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


def augment_item(item: dict[str, Any], options: AugmentOptions, generator: torch.Generator,
                 convert: Callable[[str, torch.Tensor], torch.Tensor] | None = None) -> dict[str, Any]:
    """Apply the paired augmentation to a dataset item (``input``, ``target``, optional ``mask``, ``skin``).

    ``convert(key, pixels)``, when given, turns (part of) ``item[key]``, then decoded pixels, into float: the
    folder dataset passes it so that only the pixels the crop needs are converted.
    """
    keys = [key for key in IMAGE_KEYS if key in item]
    parts = [item[key] for key in keys]
    by_index = None if convert is None else (lambda index, pixels: convert(keys[index], pixels))
    if by_index is not None and options.resize is not None:  # a resize needs the whole images in float
        parts, by_index = [by_index(index, part) for index, part in enumerate(parts)], None
    parts = _resized(parts, options)
    outputs = apply_geometry(parts, draw_geometry(tuple(parts[0].shape[-2:]), options, generator), by_index)
    out = {**item, **dict(zip(keys, outputs, strict=True))}
    out["input"] = salt_and_pepper(out["input"], options.salt_pepper, generator)
    return out
