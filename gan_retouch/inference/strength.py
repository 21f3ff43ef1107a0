"""Choosing a model's edit strength from held-out pairs: the PSNR gain over the identity at every strength.

At strength ``s`` a plan's output is ``x + s * d`` with ``d`` the model's full edit (``inference.run``), so on the
scored pixels its squared error to the target ``t`` is ``s^2 A - 2 s B + C`` with ``A = mean(d^2)``,
``B = mean(d (t - x))`` and ``C = mean((t - x)^2)`` (the identity's): one run of the model per pair gives its
gain at every strength exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from gan_retouch.metrics import MSE_FLOOR

STRENGTHS = tuple(step / 20 for step in range(21))  # 0, 0.05, ..., 1: the strengths a run chooses from


def strength_gains(input: torch.Tensor, output: torch.Tensor, target: torch.Tensor,
                   region: torch.Tensor | None = None, strengths: Sequence[float] = STRENGTHS) -> list[float]:
    """PSNR gain over the identity, in dB, of ``input + s * (output - input)`` for each ``s`` of ``strengths``,
    over the pixels where ``region`` (``[1,H,W]`` or ``[N,1,H,W]``, 0/1) is 1 (all pixels when None)."""
    edit = (output - input).double()
    wanted = (target - input).double()
    weight = torch.ones_like(edit[..., :1, :, :]) if region is None else region.double().expand_as(edit[..., :1, :, :])
    count = weight.sum() * edit.shape[-3]
    if count == 0:
        raise ValueError("strength_gains: the region holds no pixels")
    a, b, c = ((weight * term).sum() / count for term in (edit * edit, edit * wanted, wanted * wanted))
    identity = max(float(c), MSE_FLOOR)
    return [10.0 * math.log10(identity / max(float(s * s * a - 2 * s * b + c), MSE_FLOOR)) for s in strengths]


def best_strength(gains: Sequence[Sequence[float]], strengths: Sequence[float] = STRENGTHS) -> tuple[float, float]:
    """The strength at which the scored pair that gains least gains most (the smaller one on a tie), and the mean
    gain there; ``(0.0, 0.0)`` when some pair is at or below the identity at every strength above 0.

    The worst pair, not the mean, decides: a mean can trade one photo made worse for another made better, and a
    new photo may be like the one made worse."""
    worst = [min(pair[i] for pair in gains) for i in range(len(strengths))]
    best = max(range(len(strengths)), key=lambda i: (worst[i], -strengths[i]))
    if worst[best] <= 0:
        return 0.0, 0.0
    return float(strengths[best]), sum(pair[best] for pair in gains) / len(gains)
