"""Full-resolution inference, whole or in overlapping tiles blended with a smooth window (no seams).

Padding to a network's stride happens inside the network (``nets.base.Generator``), so tiles may have any size.
Tiles start on multiples of the network's stride, so every tile is downsampled in the same phase as the whole
image. On each side with a neighbour, a tile's weight is 0 over the outer quarter of the overlap (where the tile
sees its own border padding instead of the neighbouring pixels), rises as a raised cosine across the middle
half and is 1 beyond (and at the image border); the weighted sum is divided by the summed weights. Every pixel
is thus a smooth convex blend of tiles, and the result equals whole-image inference wherever the network's
receptive-field radius is at most a quarter of the overlap (use a larger overlap for deep networks).

Tiling only where needed: ``auto_tile`` estimates a network's peak memory per pixel from one pass on a small
probe image and returns 0 (whole image) when the image fits the caller's memory budget, else the largest tile
that does (``memory_budget``: the run's ``memory_mb``, else a share of the free memory). The inference plan
(``inference.plan``) decides the tile; ``inference.run`` runs it.
"""

from __future__ import annotations

import math
import os

import torch
from torch import nn

from gan_retouch.inference.work_size import Runner
from gan_retouch.nets.base import unwrap

PROBE_SIDE = 64  # side of the small real pass that measures activation sizes (rounded up to the stride)
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


def run_tiled(run: Runner, images: torch.Tensor, mask: torch.Tensor | None, tile: int, overlap: int,
              stride: int = 1) -> torch.Tensor:
    """``run(images, mask)`` (an RGB output), whole when ``tile`` is 0 or the images fit one tile, else over
    square tiles of side ``tile`` sharing ``overlap`` px (starting on multiples of ``stride``), blended without
    seams. The plan (``inference.plan``) has checked that ``tile`` exceeds twice the overlap and the overlap
    plus the stride."""
    height, width = images.shape[-2:]
    if not tile or (height <= tile and width <= tile):
        return run(images, mask)
    total = torch.zeros_like(images)
    weights = torch.zeros(1, 1, height, width, device=images.device, dtype=images.dtype)
    for top, bottom in tile_spans(height, tile, overlap, stride):
        rows = _ramp(top, bottom, height, overlap, images.device)
        for left, right in tile_spans(width, tile, overlap, stride):
            cols = _ramp(left, right, width, overlap, images.device)
            window = (rows[:, None] * cols[None, :]).to(images.dtype)
            region = (..., slice(top, bottom), slice(left, right))
            piece_mask = mask[region] if mask is not None else None
            total[region] += run(images[region], piece_mask) * window
            weights[region] += window
    return total.div_(weights)


def bytes_per_pixel(generator: nn.Module, dtype: torch.dtype = torch.float32) -> float:
    """Estimated peak inference memory per input pixel (batch 1): ``LIVE_COPIES`` times the largest activation
    any submodule returns, plus ``IMAGE_COPIES`` 3-channel images. Measured by one real pass on a small probe
    image (``PROBE_SIDE``, or the network's stride when larger) where the network lives: a pass on the meta
    device would import torch's compiler stack, which takes longer than retouching a photo."""
    inner = unwrap(generator)
    largest = 0

    def hook(module: nn.Module, inputs: tuple, output: object) -> None:
        nonlocal largest
        outputs = output if isinstance(output, tuple) else (output,)
        largest = max([largest] + [t.numel() for t in outputs if isinstance(t, torch.Tensor)])

    stride = int(getattr(inner, "stride", 1))
    side = -(-PROBE_SIDE // stride) * stride
    parameter = next(inner.parameters(), None)
    like = {"device": parameter.device, "dtype": parameter.dtype} if parameter is not None else {}
    image = torch.rand(1, 3, side, side, **like)
    mask = torch.zeros(1, 1, side, side, **like) if getattr(inner, "takes_mask", False) else None
    handles = [m.register_forward_hook(hook) for m in inner.modules()]
    try:
        with torch.no_grad():
            inner(image, mask) if mask is not None else inner(image)
    finally:
        for handle in handles:
            handle.remove()
    element = torch.empty((), dtype=dtype).element_size()
    return element * (LIVE_COPIES * largest / side**2 + IMAGE_COPIES * 3)


def auto_tile(generator: nn.Module, height: int, width: int, budget_bytes: float, batch: int = 1,
              overlap: int = 32, dtype: torch.dtype = torch.float32) -> int:
    """0 when ``batch`` images of ``height`` x ``width`` fit ``budget_bytes`` whole, else the largest square tile
    (a multiple of 64, at least ``MIN_AUTO_TILE`` and more than twice ``overlap``) whose estimate fits. An image
    that fits in the smallest tile is whole either way: it is not measured."""
    if max(height, width) <= max(MIN_AUTO_TILE, (2 * overlap) // 64 * 64 + 64):
        return 0
    per_pixel = bytes_per_pixel(generator, dtype) * batch
    if height * width * per_pixel <= budget_bytes:
        return 0
    side = int(math.sqrt(budget_bytes / per_pixel)) // 64 * 64
    return max(side, MIN_AUTO_TILE, (2 * overlap) // 64 * 64 + 64)


def memory_budget(memory_mb: float | None, device: torch.device) -> float:
    """Bytes one batch may use: ``memory_mb`` when set, else 70 % of the free GPU memory or half the available
    RAM."""
    if memory_mb is not None:
        return float(memory_mb) * 1e6
    if device.type == "cuda":
        return 0.7 * torch.cuda.mem_get_info(device)[0]
    try:
        return 0.5 * os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):  # no sysconf for it on this platform: assume a small machine
        return 2e9
