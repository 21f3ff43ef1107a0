"""Seeds and smooth random fields for the procedural data (torch only, every draw from an explicit generator)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block, then restore the setting.

    Procedural generation is thousands of small ops: a second thread only adds synchronisation, which on a busy
    2-core CPU made it 9-20x slower than one thread (the bench_data figures). Switching costs about a microsecond.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


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
    """Zero-mean, unit-variance noise drawn on a ``grid`` and upsampled to ``size``: ``[C,H,W]``.

    The grid fixes the spatial frequency relative to the image, so the same seed gives the same field at any size.
    Bicubic to at most 4x the grid, then bilinear: smooth like bicubic at a fraction of its cost at full size.
    """
    field = torch.randn((1, channels, *grid), generator=generator)
    if tuple(grid) != tuple(size):
        middle = (min(size[0], 4 * grid[0]), min(size[1], 4 * grid[1]))
        if middle != tuple(grid):
            field = F.interpolate(field, size=middle, mode="bicubic", align_corners=False)
        if middle != tuple(size):
            field = F.interpolate(field, size=size, mode="bilinear", align_corners=False)
    field = field[0]
    return (field - field.mean()) / field.std().clamp_min(1e-6)


class Draws:
    """Random numbers from one seeded generator, drawn 64 at a time (a torch call per number costs microseconds).

    The sequence depends only on the seed parts, so a face drawn from ``Draws(seed, split, index, "face")`` is
    the same in every process.
    """

    def __init__(self, *parts: object) -> None:
        self.generator = generator_for(*parts)
        self._block: list[float] = []

    def uniform(self, low: float = 0.0, high: float = 1.0) -> float:
        """A number in [low, high)."""
        if not self._block:
            self._block = torch.rand(64, generator=self.generator).tolist()[::-1]
        return low + (high - low) * self._block.pop()

    def chance(self, probability: float) -> bool:
        """True with the given probability."""
        return self.uniform() < probability

    def integer(self, low: int, high: int) -> int:
        """An integer in [low, high]."""
        return min(low + int(self.uniform() * (high - low + 1)), high)

    def pick(self, options: tuple | list) -> object:
        """One of ``options``, uniformly."""
        return options[self.integer(0, len(options) - 1)]

    def normal(self) -> float:
        """A standard normal number (Box-Muller)."""
        return math.sqrt(-2.0 * math.log(max(self.uniform(), 1e-12))) * math.cos(2 * math.pi * self.uniform())
