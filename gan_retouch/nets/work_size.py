"""Retouching at the scale a model learned: the edit is computed at a working size and applied at full resolution.

A network sees defects and features at the pixel sizes of its training images. On a larger photo (a 1024 px
portrait after training on 256 px faces) every blemish is several times larger than anything it learned, and a
do-no-harm model then leaves it alone. With a working size W, an image whose longer side exceeds W is
downscaled (antialiased) so that its longer side is W, the network runs there, and its edit ``output - input``
is upscaled (bilinear) and added to the full-resolution input: detail the network does not change (hair, pores,
the background) keeps every original pixel, and where an edit-mask model's map is zero the output is exactly
the input. Images no larger than W run as they are. A generator carries its working size as the attribute
``work_size`` (int, or None = native resolution), set from ``model.generator.work_size`` in training and saved in
checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from gan_retouch.errors import ConfigError
from gan_retouch.values import is_integer

MIN_WORK_SIZE = 32


def check_work_size(value: object, key: str) -> int | None:
    """``value`` as a working size: an integer >= ``MIN_WORK_SIZE`` or None (native); a ConfigError otherwise."""
    if value is None:
        return None
    if not is_integer(value) or int(value) < MIN_WORK_SIZE:
        raise ConfigError(f"{key} = {value!r} is not a working size; valid: an integer >= {MIN_WORK_SIZE} (the longer "
                          "side, in pixels, at which the network sees an image) or null (native resolution)")
    return int(value)


def work_size_of(generator: nn.Module) -> int | None:
    """The working size a generator carries (None = native resolution, also for models saved without one)."""
    return getattr(generator, "work_size", None)


def override_work_size(generator: nn.Module, override: object, key: str) -> None:
    """Give a loaded generator the working size ``override`` for one run (0 = native, None keeps its own)."""
    if override is None:
        return
    native = is_integer(override) and int(override) == 0
    generator.work_size = None if native else check_work_size(override, key)


def work_shape(height: int, width: int, work_size: int | None) -> tuple[int, int]:
    """The shape the network runs at: the image's own when it fits ``work_size``, else scaled down to fit it."""
    if work_size is None or max(height, width) <= work_size:
        return height, width
    scale = work_size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def at_work_size(
    run: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    images: torch.Tensor,
    mask: torch.Tensor | None,
    work_size: int | None,
) -> torch.Tensor:
    """``run(images, mask)`` (an RGB output in [0, 1]) with the edit computed at ``work_size``, at full size."""
    height, width = images.shape[-2:]
    small_shape = work_shape(height, width, work_size)
    if small_shape == (height, width):
        return run(images, mask)
    small = F.interpolate(images, size=small_shape, mode="bilinear", align_corners=False, antialias=True)
    small_mask = (F.interpolate(mask, size=small_shape, mode="bilinear", align_corners=False, antialias=True)
                  if mask is not None else None)
    edit = run(small, small_mask).to(small.dtype) - small
    edit = F.interpolate(edit, size=(height, width), mode="bilinear", align_corners=False)
    return (images + edit.to(images.dtype)).clamp(0.0, 1.0)
