"""The built-in synthetic retouching data: procedural portraits with exactly known clean targets.

A pair is the clean portrait (the target, pores and all) with defects composited on top (the input), then one
camera applied to both. Modes: ``standard`` draws ``defect_count`` defects with contrasts across
``defect_strength``; ``subtle`` matches real professional retouching: defects are added until a drawn share of
the pixels (0.6-1.3 %) changes by more than 8/255, then their contrast is scaled so the identity PSNR lands in
43-48 dB and that share in 0.4-1.7 % (the figures measured on real 1024 px FFHQR pairs), at the size generated.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from gan_retouch.errors import ConfigError
from gan_retouch.registry import choice
from gan_retouch.synth.camera import apply_camera
from gan_retouch.synth.defects import DefectLayer
from gan_retouch.synth.family import SynthOptions
from gan_retouch.synth.noise import Draws, single_thread
from gan_retouch.synth.portrait import render_portrait

SPLITS = ("train", "val", "test")
MIN_SIZE = 32
CHANGED_LEVEL = 8 / 255  # "changed" = some channel differs by more than 8 levels (the real-data statistic)
SUBTLE_PSNR = (43.0, 48.0)  # identity PSNR of real retouched pairs (dB)
SUBTLE_CHANGED = (0.004, 0.017)  # share of pixels changed by more than 8 levels in real retouched pairs
SUBTLE_MAX_DEFECTS = 60
SCALES = torch.logspace(math.log10(0.2), math.log10(5.0), 49)


def changed_share(first: torch.Tensor, second: torch.Tensor) -> float:
    """Share of pixels where some channel differs by more than 8/255 (the subtle-mode statistic)."""
    return float(((first - second).abs().amax(0) > CHANGED_LEVEL).float().mean())


def identity_psnr(first: torch.Tensor, second: torch.Tensor) -> float:
    """PSNR (dB, MAX = 1) of ``first`` against ``second``; inf when they are equal."""
    mse = float((first - second).square().mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def blemish(
    clean: torch.Tensor, skin: torch.Tensor, eyes: list[tuple[float, float]], head_radius: float,
    options: SynthOptions, draws: Draws, reference: float | None = None,
) -> torch.Tensor:
    """``clean`` with the family's defects drawn on ``skin`` (standard: a count; subtle: up to an area share).

    ``eyes`` (pixel centres) place the under-eye shadows; ``head_radius`` (pixels) sizes them; ``reference``
    (pixels) is the length defect sizes are fractions of (default: the image's shorter side).
    """
    layer = DefectLayer(clean, skin, draws, eyes, head_radius, reference)
    kinds = options.defects + (("freckles",) if options.freckles_are_defects else ())
    if not kinds:
        return clean

    def one() -> None:
        layer.add(draws.pick(kinds), draws.uniform(*options.defect_strength), draws.uniform(*options.defect_scale))

    if options.mode == "standard":
        for _ in range(draws.integer(*options.defect_count)):
            one()
        return layer.apply(clean)
    wanted = draws.uniform(0.006, 0.013)
    blemished = clean
    for _ in range(SUBTLE_MAX_DEFECTS):
        one()
        blemished = layer.apply(clean)
        if changed_share(blemished, clean) >= wanted:
            break
    return blemished


def calibrate_subtle(blemished: torch.Tensor, target: torch.Tensor, draws: Draws) -> torch.Tensor:
    """Scale the difference so identity PSNR and changed share fall in the real-retouching ranges."""
    diff = blemished - target
    mse = float(diff.square().mean())
    if mse == 0:
        return blemished
    peak = diff.abs().amax(0).flatten()
    changed = (peak[None, :] * SCALES[:, None] > CHANGED_LEVEL).float().mean(1)
    psnr = 10 * torch.log10(1.0 / (mse * SCALES.square()))
    want_psnr, want_changed = draws.uniform(44.0, 47.0), draws.uniform(0.006, 0.013)
    inside = ((psnr > SUBTLE_PSNR[0] + 0.3) & (psnr < SUBTLE_PSNR[1] - 0.3)
              & (changed > SUBTLE_CHANGED[0] + 0.0005) & (changed < SUBTLE_CHANGED[1] - 0.001))
    cost = ((psnr - want_psnr) / 2).square() + ((changed - want_changed) / 0.003).square() + 1e3 * (~inside).float()
    scale = float(SCALES[int(cost.argmin())])
    return (target + diff * scale).clamp(0.0, 1.0)


def _photograph(blemished: torch.Tensor, clean: torch.Tensor, draws: Draws) -> tuple[torch.Tensor, torch.Tensor]:
    """One camera's photo of the blemished face (the input) and its retouch: the photo with exactly the pixels the
    defects reach (after the optics) replaced by the photo of the clean face; every other pixel stays equal."""
    footprint = ((blemished - clean).abs().amax(0, keepdim=True) > 0).to(torch.float32)[None]
    footprint = F.max_pool2d(footprint, 3, 1, 1)  # one pixel of margin around each defect
    photos, footprint = apply_camera(torch.stack((blemished, clean)), footprint, draws)
    heal = (footprint[0] > 1e-3).to(torch.float32)
    return photos[0], photos[0] + (photos[1] - photos[0]) * heal


def synthesize_pair(index: int, size: int, seed: int = 0, split: str = "train", **settings: Any) -> dict:
    """Pair ``index`` of ``split``: ``input`` (with defects), ``target`` (clean), ``mask``, ``skin``, ``name``.

    Deterministic per (seed, split, index): the same face and defect layout at any ``size`` (camera noise and the
    subtle-mode calibration follow the pixel grid). ``settings`` are the ``data.synthetic`` family settings
    (mode, defects, defect_count, ..., camera; see options/common.yaml). ``mask`` marks every pixel where input
    and target differ; the splits draw from disjoint seeds.
    """
    choice(split, SPLITS, "split")
    if not isinstance(size, int) or size < MIN_SIZE:
        raise ConfigError(f"synthetic image size must be an integer >= {MIN_SIZE} pixels, got {size!r}")
    if index < 0:
        raise ConfigError(f"synthetic pair index must be >= 0, got {index}")
    options = SynthOptions.from_mapping(settings)
    with single_thread():
        return _pair((seed, split, index), size, options)


def _pair(parts: tuple, size: int, options: SynthOptions) -> dict:
    _, split, index = parts
    portrait = render_portrait(parts, size, options)
    target = portrait.image
    draws = Draws(*parts, "defects")
    blemished = target
    nothing_to_fix = draws.chance(options.clean_fraction)  # drawn in every split: the same layouts in all of them
    if not nothing_to_fix or split != "train":
        blemished = blemish(target, portrait.skin, portrait.eyes, portrait.radius, options, draws)
    if options.camera:
        blemished, target = _photograph(blemished, target, Draws(*parts, "camera"))
    if options.mode == "subtle":
        blemished = calibrate_subtle(blemished, target, draws)
    mask = ((blemished - target).abs().amax(0, keepdim=True) > 0).to(torch.float32)
    return {
        "input": blemished.contiguous(),
        "target": target.contiguous(),
        "mask": mask,
        "skin": portrait.skin.to(torch.float32),
        "name": f"synthetic_{split}_{index:06d}",
    }
