"""Holding out part of the training pairs (``data.holdout``), so that a run can choose its edit strength on pixels
it never trained on (``inference.strength: auto``).

Two ways, chosen by ``data.holdout``:

- ``pairs``: one training pair in four (at least one) is left out of training whole, chosen by a hash of its name
  (stable when pairs are added); the strength is scored on those pairs, as a new photo would be;
- ``regions``: every pair trains, but each is cut into a grid of cells of about ``2 * data.crop`` px at the training
  scale and one cell in four (odd row and odd column) is left out: training crops come from the other cells only,
  and the strength is scored on the held-out cells of every pair. One or two pairs are enough for it.

``auto`` holds out pairs when there are at least ``MIN_PAIRS`` training pairs, else regions.
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import Dataset

from gan_retouch.data.augment import AugmentOptions, augment_item, side_scale
from gan_retouch.data.training_scale import at_scale
from gan_retouch.errors import ConfigError, DataError
from gan_retouch.synth.noise import generator_for

if TYPE_CHECKING:
    from gan_retouch.data.datasets import FolderPairs

HOLDOUT_MODES = ("none", "auto", "pairs", "regions")
HOLDOUT = "holdout"  # the split name of the held-out pairs or regions
MIN_PAIRS = 4  # auto: from this many training pairs on, whole pairs are held out
SHARE = 4  # one pair (or cell) in SHARE is held out


def holdout_mode(data: dict[str, Any], pairs: int) -> str:
    """``data.holdout`` with ``auto`` resolved for ``pairs`` training pairs: none | pairs | regions."""
    mode = data.get("holdout", "none")
    if mode not in HOLDOUT_MODES:
        raise ConfigError(f"data.holdout={mode!r}; valid: {' | '.join(HOLDOUT_MODES)}")
    if mode == "auto":
        mode = "pairs" if pairs >= MIN_PAIRS else "regions"
    if mode == "pairs" and pairs < 2:
        raise ConfigError(f"data.holdout=pairs needs at least 2 training pairs (there is {pairs}): one must stay to "
                          "train on; use data.holdout=regions (or auto)")
    if mode == "regions" and not data.get("crop"):
        raise ConfigError("data.holdout=regions trains on crops of the cells it keeps: set data.crop (e.g. 128), or "
                          "use data.holdout=pairs")
    return mode


def held_out_names(names: list[str]) -> set[str]:
    """The pairs ``pairs`` holds out: one in SHARE (at least one), those with the smallest hash of their name."""
    count = max(1, round(len(names) / SHARE))
    return set(sorted(names, key=lambda name: hashlib.sha1(name.encode("utf-8")).hexdigest())[:count])


def cells(height: int, width: int, data: dict[str, Any], name: str = "a pair",
          scale: float | None = None) -> list[tuple[int, int, int, int, bool]]:
    """The grid of an image: ``(top, bottom, left, right, held_out)`` in its own pixels, row by row; cells of about
    ``2 * data.crop`` px at the training scale (``scale``, the pair's ``FolderPairs.training_scale``; None =
    ``data.max_side`` alone), at least 2 x 2, every cell at least ``data.crop + 2`` px there."""
    crop = int(data["crop"])
    scale = side_scale(height, width, data.get("max_side")) if scale is None else scale
    counts = []
    for side in (height * scale, width * scale):
        count = max(2, math.floor(side / (2 * crop)))
        if side / count < crop + 2:
            raise DataError(f"{name} is {width}x{height} px ({round(width * scale)}x{round(height * scale)} at the "
                            f"training scale): too small to hold out regions with data.crop={crop}; it needs "
                            f"{2 * crop + 4} px on each side there. Lower data.crop or use data.holdout=pairs")
        counts.append(count)
    rows = [round(i * height / counts[0]) for i in range(counts[0] + 1)]
    cols = [round(i * width / counts[1]) for i in range(counts[1] + 1)]
    return [(rows[r], rows[r + 1], cols[c], cols[c + 1], r % 2 == 1 and c % 2 == 1)
            for r in range(counts[0]) for c in range(counts[1])]


def region_mask(height: int, width: int, data: dict[str, Any], name: str = "a pair",
                scale: float | None = None) -> torch.Tensor:
    """``[1,H,W]`` float: 1 on the held-out cells of an image (``cells``), 0 elsewhere."""
    mask = torch.zeros(1, height, width)
    for top, bottom, left, right, held in cells(height, width, data, name, scale):
        if held:
            mask[:, top:bottom, left:right] = 1.0
    return mask


class RegionPairs(Dataset):
    """Training crops from the cells ``regions`` keeps: item ``v`` is pair ``v % len``, one of its kept cells
    drawn from the item's own generator, cut out and augmented at the whole image's training scale."""

    def __init__(self, base: FolderPairs, augment: AugmentOptions, data: dict[str, Any]) -> None:
        self.base, self.augment, self.data = base, augment, data

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < 0:
            raise IndexError(f"dataset indices are non-negative, got {index}")
        pixels, record = self.base._readable(index % len(self))
        height, width = pixels["input"].shape[-2:]
        scale = self.base.training_scale(index % len(self))
        kept = [cell for cell in cells(height, width, self.data, record.name, scale) if not cell[4]]
        generator = generator_for(self.base.seed, "augment", index)
        top, bottom, left, right, _ = kept[int(torch.randint(0, len(kept), (), generator=generator))]
        options = at_scale(self.augment, (bottom - top, right - left), scale)
        part = {key: value[..., top:bottom, left:right] if isinstance(value, torch.Tensor) else value
                for key, value in pixels.items()}
        return augment_item(part, options, generator, lambda key, region: self.base._convert(key, region, record))


class HeldOut(Dataset):
    """What the strength is scored on: the held-out pairs whole, or every pair with its held-out cells marked
    (``region``, ``[1,H,W]``); never augmented."""

    def __init__(self, base: FolderPairs, data: dict[str, Any], regions: bool) -> None:
        self.base, self.data, self.regions = base, data, regions

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.base.load(index)
        if self.regions:
            item["region"] = region_mask(*item["input"].shape[-2:], self.data, str(item["name"]),
                                         self.base.training_scale(index))
        return item
