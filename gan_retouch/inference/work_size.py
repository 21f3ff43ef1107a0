"""Retouching at the scales a model learned: a working size, and a coarse pass for blemishes larger than it saw.

A network sees defects and features at the pixel sizes of its training images. On a larger photo (a 1024 px
portrait after training on 256 px faces) every blemish is several times larger than anything it learned, and a
do-no-harm model then leaves it alone. With a working size W, an image whose longer side exceeds W is
downscaled (antialiased) so that its longer side is W, the network runs there, and its edit ``output - input``
is upscaled (bilinear) and added to the full-resolution input: detail the network does not change (hair, pores,
the background) keeps every original pixel, and where an edit-mask model's map is zero the output is exactly
the input. Images no larger than W run as they are. The working size is part of a model's inference plan
(``inference.plan``), set from ``inference.work_size`` in training and saved in checkpoints.

Coarse pass (edit-mask models; the plan's ``coarse_pass``, from ``inference.coarse_pass``): a blemish larger
than any the network learned stays shut out of its edit map at every working size. With it the network first
runs on the image at half its size (``COARSE_SCALE``), where such a blemish looks like the ones it knows; only its
confident edits count there (the edit map is floored at ``COARSE_FLOOR`` at least, so faint edits of the smaller
view stay out), they are upscaled and applied, and the network then runs at full size on that result, fixing
what the first pass left and the small defects.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F

Runner = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]  # (images, mask) -> RGB output in [0, 1]
MIN_WORK_SIZE = 32
COARSE_SCALE = 0.5  # the coarse pass sees the image at this fraction of its (working) size
COARSE_FLOOR = 0.85  # the edit-map floor of the coarse pass, at least: only edits its map is nearly sure of


def work_shape(height: int, width: int, work_size: int | None) -> tuple[int, int]:
    """The shape the network runs at: the image's own when it fits ``work_size``, else scaled down to fit it."""
    if work_size is None or max(height, width) <= work_size:
        return height, width
    scale = work_size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def coarse_shape(height: int, width: int) -> tuple[int, int]:
    """The shape of the coarse pass for an image (or working shape) of ``height`` x ``width``."""
    return max(1, round(height * COARSE_SCALE)), max(1, round(width * COARSE_SCALE))


def _resized_edit(run: Runner, images: torch.Tensor, mask: torch.Tensor | None, shape: tuple[int, int]) -> torch.Tensor:
    """``run``'s edit (output - input) of ``images`` scaled to ``shape``, brought back to the images' size."""
    small = F.interpolate(images, size=shape, mode="bilinear", align_corners=False, antialias=True)
    small_mask = (F.interpolate(mask, size=shape, mode="bilinear", align_corners=False, antialias=True)
                  if mask is not None else None)
    edit = run(small, small_mask).to(small.dtype) - small
    return F.interpolate(edit, size=images.shape[-2:], mode="bilinear", align_corners=False).to(images.dtype)


def coarse_to_fine(run: Runner, coarse_run: Runner, images: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``coarse_run``'s edit at ``COARSE_SCALE`` applied first, then ``run`` at full size on the result."""
    shape = coarse_shape(*images.shape[-2:])
    return run(_resized_edit(coarse_run, images, mask, shape).add_(images).clamp_(0.0, 1.0), mask)


def at_work_size(
    run: Runner,
    images: torch.Tensor,
    mask: torch.Tensor | None,
    work_size: int | None,
    coarse_run: Runner | None = None,
) -> torch.Tensor:
    """``run(images, mask)`` (an RGB output in [0, 1]) with the edit computed at ``work_size``, at full size;
    with ``coarse_run`` (the network with its floor raised to ``COARSE_FLOOR``) after a coarse pass."""
    network = run if coarse_run is None else partial(coarse_to_fine, run, coarse_run)
    height, width = images.shape[-2:]
    small_shape = work_shape(height, width, work_size)
    if small_shape == (height, width):
        return network(images, mask)
    return _resized_edit(network, images, mask, small_shape).add_(images).clamp_(0.0, 1.0)  # no third copy
