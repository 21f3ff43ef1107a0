"""The built-in synthetic retouching benchmark: procedural portraits with exactly known clean targets."""

from __future__ import annotations

from typing import Any

import torch

from gan_retouch.data.defects import DefectOptions, add_defects
from gan_retouch.data.noise import generator_for
from gan_retouch.data.portrait import render_portrait
from gan_retouch.errors import ConfigError
from gan_retouch.registry import choice

SPLITS = ("train", "val", "test")
MIN_SIZE = 32


def synthesize_pair(index: int, size: int, seed: int = 0, split: str = "train", **defect_options: Any) -> dict:
    """Pair ``index`` of ``split``: ``input`` (blemished), ``target`` (clean), ``mask`` (blemishes), ``skin``, ``name``.

    Deterministic per (seed, split, index); the same face and defect layout at any ``size``. ``defect_options``
    are the ``data.synthetic`` counts and strengths (acne, spots, freckle_clusters, marks, defect_scale,
    tone_defect); the splits draw from disjoint seeds, so validation faces never appear in training.
    """
    choice(split, SPLITS, "split")
    if not isinstance(size, int) or size < MIN_SIZE:
        raise ConfigError(f"synthetic image size must be an integer >= {MIN_SIZE} pixels, got {size!r}")
    if index < 0:
        raise ConfigError(f"synthetic pair index must be >= 0, got {index}")
    options = DefectOptions.from_mapping(defect_options)
    parts = (seed, split, index)
    portrait = render_portrait(parts, size)
    blemished, mask = add_defects(
        portrait.image, portrait.skin, generator_for(*parts, "defects"), options, portrait.cheeks
    )
    return {
        "input": blemished.contiguous(),
        "target": portrait.image.contiguous(),
        "mask": mask,
        "skin": portrait.skin.to(torch.float32),
        "name": f"synthetic_{split}_{index:06d}",
    }
