"""Backgrounds for the synthetic portraits: plain, gradient, blotchy, pattern, bokeh and skin-coloured.

Skin-coloured backgrounds (a beige wall, wood, a hand-held card) teach a model that skin colour alone does not
mean "retouch here": defects are only ever drawn on the face's own skin mask.
"""

from __future__ import annotations

import math

import torch

from gan_retouch.synth.noise import Draws, smooth_noise


def _muted(draws: Draws) -> torch.Tensor:
    return torch.tensor([draws.uniform(0.08, 0.9) for _ in range(3)])[:, None, None]


def draw_background(
    kind: str, draws: Draws, x: torch.Tensor, y: torch.Tensor, skin_colour: torch.Tensor
) -> torch.Tensor:
    """A ``[3,H,W]`` background of ``kind`` on the normalised grid (x, y in [-1, 1]); same look at any size."""
    size = x.shape[-1]
    first, second = _muted(draws), _muted(draws)
    if kind == "plain":
        image = first.expand(3, size, size)
    elif kind == "gradient":
        angle = draws.uniform(0, 2 * math.pi)
        blend = ((math.cos(angle) * x + math.sin(angle) * y) * 0.5 + 0.5).clamp(0, 1)
        image = first + (second - first) * blend
    elif kind == "blotchy":
        field = smooth_noise(draws.generator, (5, 5), (size, size), channels=3)
        image = first + 0.12 * field
    elif kind == "pattern":
        period, angle = draws.uniform(0.06, 0.4), draws.uniform(0, math.pi)
        wave = torch.sin((math.cos(angle) * x + math.sin(angle) * y) * (2 * math.pi / period))
        sharp = draws.uniform(1.0, 6.0)
        image = first + (second - first) * (torch.tanh(sharp * wave) * 0.5 + 0.5)
    elif kind == "bokeh":
        image = first * 0.6
        for _ in range(draws.integer(4, 12)):
            bx, by, radius = draws.uniform(-1, 1), draws.uniform(-1, 1), draws.uniform(0.04, 0.2)
            disc = ((radius - torch.sqrt((x - bx).square() + (y - by).square())) / 0.02).clamp(0, 1)
            image = image + (_muted(draws) * draws.uniform(0.2, 0.6)) * disc
    else:  # skin-coloured: close to the face's tone, with a soft texture of its own
        shift = torch.tensor([draws.uniform(0.85, 1.12) for _ in range(3)])[:, None, None]
        image = skin_colour * shift * (1.0 + 0.05 * smooth_noise(draws.generator, (8, 8), (size, size)))
    return image.clamp(0.0, 1.0).contiguous()
