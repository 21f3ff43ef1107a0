"""Full-resolution inference, whole or in overlapping tiles blended with a smooth window (no seams).

Padding to a network's stride happens inside the network (``nets.base.Generator``), so tiles may have any size.
Tiles start on multiples of the network's stride, so every tile is downsampled in the same phase as the whole
image. On each side with a neighbour, a tile's weight is 0 over the outer quarter of the overlap (where the tile
sees its own border padding instead of the neighbouring pixels), rises as a raised cosine across the middle
half and is 1 beyond (and at the image border); the weighted sum is divided by the summed weights. Every pixel
is thus a smooth convex blend of tiles, and the result equals whole-image inference wherever the network's
receptive-field radius is at most a quarter of the overlap (use a larger overlap for deep networks).

Tiling only where needed: ``auto_tile`` estimates a network's peak memory per pixel from one shape-only (meta
device) pass and returns 0 (whole image) when the image fits the caller's memory budget, else the largest tile
that does. Running a network over tiles is net-level work, so it lives in ``nets`` (``evaluate`` and ``deploy``
both use it).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gan_retouch.errors import ConfigError
from gan_retouch.nets.base import edit_floor_at_least, run_generator, unwrap
from gan_retouch.nets.work_size import COARSE_FLOOR, at_work_size, floored_network

PROBE_SIDE = 256  # side of the shape-only pass that measures activation sizes
LIVE_COPIES = 4  # the estimate's peak: this many of the largest activation alive at once, plus the images
IMAGE_COPIES = 6  # input, padded input, output and their conversions (3 channels each)
MIN_AUTO_TILE = 256


def tile_spans(length: int, tile: int, overlap: int, stride: int = 1) -> list[tuple[int, int]]:
    """``(start, end)`` of tiles covering ``length``: starts on multiples of ``stride``, neighbours share at
    least ``overlap`` px, the last tile ends at ``length`` (it may be up to ``stride - 1`` px longer)."""
    if length <= tile:
        return [(0, length)]
    step = max(stride, (tile - overlap) // stride * stride)
    last = (length - tile) // stride * stride
    starts = list(range(0, last, step)) + [last]
    ends = [min(start + tile, length) for start in starts[:-1]] + [length]
    return list(zip(starts, ends, strict=True))


def _ramp(start: int, end: int, length: int, overlap: int, device: torch.device) -> torch.Tensor:
    """1-D blending weight of one tile: 0 over the outer quarter of the overlap, a raised cosine across the
    middle half, 1 beyond; only on sides that have a neighbour."""
    weight = torch.ones(end - start, device=device)
    margin, width = overlap // 4, overlap - 2 * (overlap // 4)
    if width <= 0:
        return weight
    rise = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(width, device=device) + 0.5) / width)
    rise = torch.cat([torch.zeros(margin, device=device), rise, torch.ones(margin, device=device)])
    if start > 0:
        weight[:overlap] = rise
    if end < length:
        weight[-overlap:] = torch.minimum(weight[-overlap:], rise.flip(0))
    return weight


def check_tiling(tile: int, overlap: int, key: str = "tile") -> None:
    """A ConfigError unless ``tile`` is 0 (off) or larger than twice the overlap."""
    if tile < 0 or overlap < 0:
        raise ConfigError(f"{key} and {key}_overlap must be >= 0; got {tile} and {overlap}")
    if tile and tile <= 2 * overlap:
        raise ConfigError(
            f"{key}={tile} must exceed twice {key}_overlap={overlap} so that tiles advance; "
            f"use e.g. {key}={max(4 * overlap, 256)} or lower {key}_overlap"
        )


@torch.no_grad()
def infer(
    generator: nn.Module,
    images: torch.Tensor,
    mask: torch.Tensor | None = None,
    tile: int = 0,
    overlap: int = 32,
    work_size: int | None = None,
    coarse: bool = False,
) -> torch.Tensor:
    """The generator's RGB output ``[N,3,H,W]`` in [0, 1] for images of any size, optionally tiled.

    ``tile`` = 0 runs the whole image at once; otherwise square tiles of that side with ``overlap`` px shared
    between neighbours are run one by one (memory bounded by the tile) and blended without seams. ``work_size``
    (``nets.work_size``; None = native) runs the network on the image scaled down to fit it and adds the
    upscaled edit to the full-resolution input; tiles then cover the scaled-down image. ``coarse`` runs the
    coarse pass first (``nets.work_size``; the generator, or a backend's ``network``, needs an edit map).
    """
    check_tiling(tile, overlap)

    def run(x: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
        return _infer_native(generator, x, m, tile, overlap)

    coarse_run = None
    if coarse:
        floored = floored_network(generator)
        if floored is None:
            raise ConfigError("the coarse pass needs a model with an edit map run by PyTorch")

        def coarse_run(x: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
            with edit_floor_at_least(floored, COARSE_FLOOR):
                return run(x, m)

    return at_work_size(run, images, mask, work_size, coarse_run)


def _infer_native(generator: nn.Module, images: torch.Tensor, mask: torch.Tensor | None, tile: int,
                  overlap: int) -> torch.Tensor:
    """``infer`` at the images' own resolution."""
    height, width = images.shape[-2:]
    if not tile or (height <= tile and width <= tile):
        return run_generator(generator, images, mask)[0]
    stride = getattr(unwrap(generator), "stride", 1)
    if tile - overlap < stride:
        raise ConfigError(f"tile={tile} must exceed the overlap ({overlap}) by at least the network's stride ({stride})")
    total = torch.zeros_like(images)
    weights = torch.zeros(1, 1, height, width, device=images.device, dtype=images.dtype)
    for top, bottom in tile_spans(height, tile, overlap, stride):
        rows = _ramp(top, bottom, height, overlap, images.device)
        for left, right in tile_spans(width, tile, overlap, stride):
            cols = _ramp(left, right, width, overlap, images.device)
            window = (rows[:, None] * cols[None, :]).to(images.dtype)
            region = (..., slice(top, bottom), slice(left, right))
            piece_mask = mask[region] if mask is not None else None
            output = run_generator(generator, images[region], piece_mask)[0]
            total[region] += output * window
            weights[region] += window
    return total / weights


def bytes_per_pixel(generator: nn.Module, dtype: torch.dtype = torch.float32) -> float:
    """Estimated peak inference memory per input pixel (batch 1): ``LIVE_COPIES`` times the largest activation
    any submodule returns, plus ``IMAGE_COPIES`` 3-channel images. Measured by one pass on the meta device."""
    inner = unwrap(generator)
    largest = 0

    def hook(module: nn.Module, inputs: tuple, output: object) -> None:
        nonlocal largest
        outputs = output if isinstance(output, tuple) else (output,)
        largest = max([largest] + [t.numel() for t in outputs if isinstance(t, torch.Tensor)])

    stand_ins = {name: torch.empty_like(t, device="meta") for name, t in
                 [*inner.named_parameters(), *inner.named_buffers()]}
    image = torch.empty(1, 3, PROBE_SIDE, PROBE_SIDE, device="meta")
    mask = torch.empty(1, 1, PROBE_SIDE, PROBE_SIDE, device="meta") if getattr(inner, "takes_mask", False) else None
    handles = [m.register_forward_hook(hook) for m in inner.modules()]
    try:
        with torch.no_grad():
            torch.func.functional_call(inner, stand_ins, (image, mask) if mask is not None else (image,))
    finally:
        for handle in handles:
            handle.remove()
    element = torch.empty((), dtype=dtype).element_size()
    return element * (LIVE_COPIES * largest / PROBE_SIDE**2 + IMAGE_COPIES * 3)


def auto_tile(generator: nn.Module, height: int, width: int, budget_bytes: float, batch: int = 1,
              overlap: int = 32, dtype: torch.dtype = torch.float32) -> int:
    """0 when ``batch`` images of ``height`` x ``width`` fit ``budget_bytes`` whole, else the largest square tile
    (a multiple of 64, at least ``MIN_AUTO_TILE`` and more than twice ``overlap``) whose estimate fits."""
    per_pixel = bytes_per_pixel(generator, dtype) * batch
    if height * width * per_pixel <= budget_bytes:
        return 0
    side = int(math.sqrt(budget_bytes / per_pixel)) // 64 * 64
    return max(side, MIN_AUTO_TILE, (2 * overlap) // 64 * 64 + 64)
