"""The fixed check a built-in model's manifest records: its PSNR on pairs the project generates.

Six pairs at 256 px, the same on every machine and every run: four synthetic test pairs
(``synth.synthesize_pair(i, 256, seed=36, split="test")``: procedural portraits, default family, camera model) and
two acne-family pairs rendered on a procedural portrait (``synth.render_portrait`` then ``synth.synthetic.blemish``
with acne, pustules, post-acne marks and redness, no camera). The model runs its own inference plan, whole images
(no tiles), fp32 on CPU. ``make`` records the result; the test of the shipped files reproduces it.

This is a regression check of the files, not a quality figure: docs/results.md holds those. The sha256 of the pairs
is recorded with the score, so a changed renderer is told apart from changed weights.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any

import torch
from torch import nn

from gan_retouch.inference.plan import InferencePlan
from gan_retouch.inference.run import run_plan
from gan_retouch.metrics import psnr
from gan_retouch.synth.family import SynthOptions
from gan_retouch.synth.noise import Draws, single_thread
from gan_retouch.synth.portrait import render_portrait
from gan_retouch.synth.synthetic import blemish, synthesize_pair

SEED = 36
SIZE = 256
SYNTHETIC_PAIRS = 4
RENDERED_PAIRS = 2
ACNE = {"defects": ["acne", "pustule", "post_acne", "redness"], "defect_count": [6, 16], "camera": False}
TOLERANCE_DB = 0.02  # how far a reproduced mean PSNR may drift from the recorded one (float summation order)


@lru_cache(maxsize=1)
def check_pairs() -> tuple[dict[str, Any], ...]:
    """The check's pairs: ``name``, ``input`` and ``target`` ([3,H,W] float in [0, 1]); see the module docstring.
    Drawn once per process (a few seconds); callers only read them."""
    pairs = [synthesize_pair(index, SIZE, seed=SEED, split="test") for index in range(SYNTHETIC_PAIRS)]
    family = SynthOptions.from_mapping(ACNE)
    with single_thread():
        for index in range(RENDERED_PAIRS):
            parts = (SEED, "builtin-check", index)
            portrait = render_portrait(parts, SIZE, family)
            blemished = blemish(portrait.image, portrait.skin, portrait.eyes, portrait.radius, family,
                                Draws(*parts, "defects"))
            pairs.append({"name": f"rendered_acne_{index}", "input": blemished, "target": portrait.image})
    return tuple({"name": pair["name"], "input": pair["input"], "target": pair["target"]} for pair in pairs)


def pairs_digest(pairs: Sequence[dict[str, Any]]) -> str:
    """The sha256 of the pairs quantised to 8 bits: it changes when the renderer draws other pairs."""
    digest = hashlib.sha256()
    for pair in pairs:
        for key in ("input", "target"):
            digest.update((pair[key] * 255).round().to(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@torch.no_grad()
def score(generator: nn.Module, plan: InferencePlan, pairs: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``generator`` (eval mode, on CPU) under ``plan`` on the check pairs: mean PSNR (dB, RGB, MAX 1) of output vs
    target, of the identity (input vs target), the gain, each pair's PSNR, and the pairs' digest."""
    pairs = check_pairs() if pairs is None else pairs
    whole = replace(plan, tile=0, precision="fp32", backend="torch", strength=1.0)
    per_pair, identity = {}, []
    with single_thread():
        for pair in pairs:
            image, target = pair["input"][None], pair["target"][None]
            output = run_plan(whole, generator, image, fallback=False)
            per_pair[pair["name"]] = round(float(psnr(output, target)[0]), 4)
            identity.append(float(psnr(image, target)[0]))
    mean = sum(per_pair.values()) / len(per_pair)
    base = sum(identity) / len(identity)
    return {"pairs": len(pairs), "pairs_sha256": pairs_digest(pairs), "psnr": round(mean, 4),
            "identity_psnr": round(base, 4), "gain_db": round(mean - base, 4), "per_pair": per_pair,
            "tolerance_db": TOLERANCE_DB}


def max_difference(first: nn.Module, second: nn.Module, plan: InferencePlan,
                   pairs: Sequence[dict[str, Any]]) -> float:
    """The largest absolute output difference (in [0, 1] units) of two networks under ``plan`` on ``pairs``: how
    far fp16 storage moves a model's outputs."""
    whole = replace(plan, tile=0, precision="fp32", backend="torch", strength=1.0)
    worst = 0.0
    with torch.no_grad(), single_thread():
        for pair in pairs:
            image = pair["input"][None]
            difference = run_plan(whole, first, image, fallback=False) - run_plan(whole, second, image, fallback=False)
            worst = max(worst, float(difference.abs().max()))
    return worst
