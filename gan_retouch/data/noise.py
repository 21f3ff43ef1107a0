"""Seeds and smooth random fields for the procedural data (torch only, every draw from an explicit generator)."""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed from any parts (e.g. dataset seed, split, index): same parts, same seed, any process."""
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def generator_for(*parts: object) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from ``derive_seed(*parts)``."""
    return torch.Generator().manual_seed(derive_seed(*parts))


def smooth_noise(
    generator: torch.Generator, grid: tuple[int, int], size: tuple[int, int], channels: int = 1
) -> torch.Tensor:
    """Zero-mean, unit-variance noise drawn on a ``grid`` and upsampled (bicubic) to ``size``: ``[C,H,W]``.

    The grid fixes the spatial frequency relative to the image, so the same seed gives the same field at any size.
    """
    coarse = torch.randn((1, channels, *grid), generator=generator)
    field = F.interpolate(coarse, size=size, mode="bicubic", align_corners=False)[0]
    return (field - field.mean()) / field.std().clamp_min(1e-6)
