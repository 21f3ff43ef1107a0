"""Soft-edged painting on a normalised grid, and the head geometry the face features are laid out on."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch


class Painter:
    """Layers colours with soft (anti-aliased) coverage and tracks which pixels show skin."""

    def __init__(self, size: int, background: torch.Tensor) -> None:
        self.pixel = 2.0 / size  # one pixel in normalised units: the width of anti-aliased edges
        self.image = background
        self.skin = torch.zeros(1, size, size)

    def window(self, rows: slice, cols: slice) -> Painter:
        """A painter on a copy of the window (rows, cols); ``put_back`` writes it into this one."""
        view = Painter.__new__(Painter)
        view.pixel, view.image, view.skin = self.pixel, self.image[:, rows, cols], self.skin[:, rows, cols]
        return view

    def put_back(self, view: Painter, rows: slice, cols: slice) -> None:
        self.image = self.image.clone() if self.image.stride()[-1] == 0 else self.image
        self.image[:, rows, cols] = view.image
        self.skin[:, rows, cols] = view.skin

    def coverage(self, inside: torch.Tensor, softness: float = 1.0) -> torch.Tensor:
        """Signed distance-like field (> 0 inside, normalised units) -> coverage in [0, 1] over ``softness`` px."""
        return (inside / (self.pixel * softness) + 0.5).clamp(0.0, 1.0)

    def paint(self, colour: torch.Tensor, alpha: torch.Tensor, skin: float | None = 0.0) -> None:
        """Cover with ``colour`` by ``alpha``; the skin mask moves towards ``skin`` (None leaves it as it is)."""
        self.image = self.image + (colour - self.image) * alpha
        if skin is not None:
            self.skin = self.skin + (skin - self.skin) * alpha

    def shade(self, factor: float | torch.Tensor, alpha: torch.Tensor) -> None:
        """Darken (factor < 1) or brighten the pixels by ``alpha``; coverage and skin stay as they are."""
        self.image = self.image * (1.0 + (factor - 1.0) * alpha)


def ellipse(x: torch.Tensor, y: torch.Tensor, cx: float, cy: float, rx: float, ry: float) -> torch.Tensor:
    """Approximate signed distance to an ellipse (positive inside), in normalised units."""
    radial = torch.sqrt(((x - cx) / rx).square() + ((y - cy) / ry).square())
    return (1.0 - radial) * min(rx, ry)


def colour(rgb: tuple[float, ...]) -> torch.Tensor:
    """An sRGB triple in 0..255 -> a ``[3,1,1]`` tensor in [0, 1]."""
    return torch.tensor(rgb, dtype=torch.float32)[:, None, None] / 255.0


@dataclass
class Head:
    """Where the head is: head-local coordinates X, Y (tilted), radii, yaw, shading and colours."""

    X: torch.Tensor
    Y: torch.Tensor
    rx: float
    ry: float
    yaw: float  # -1..1 fraction of a quarter turn; features shift towards +yaw and the far side narrows
    shade: torch.Tensor  # [1,H,W] lighting factor on the face
    skin: torch.Tensor  # [3,1,1] base skin colour
    hair: torch.Tensor  # [3,1,1] hair colour
    centre: tuple[float, float]  # head centre (normalised image coordinates)
    tilt: float  # radians
    size: int  # image side in pixels

    def to_pixel(self, hx: float, hy: float) -> tuple[float, float]:
        """Head-local (x, y) -> pixel (x, y) in the image."""
        cos, sin = math.cos(self.tilt), math.sin(self.tilt)
        px, py = self.centre[0] + cos * hx - sin * hy, self.centre[1] + sin * hx + cos * hy
        return (px + 1.0) * self.size / 2.0, (py + 1.0) * self.size / 2.0

    def box(self, x0: float, x1: float, y0: float, y1: float) -> tuple[slice, slice] | None:
        """Pixel (rows, cols) that cover the head-local rectangle, with a margin; None when off the image."""
        corners = [self.to_pixel(x, y) for x in (x0, x1) for y in (y0, y1)]
        left = max(int(min(c[0] for c in corners)) - 2, 0)
        right = min(int(max(c[0] for c in corners)) + 3, self.size)
        top = max(int(min(c[1] for c in corners)) - 2, 0)
        bottom = min(int(max(c[1] for c in corners)) + 3, self.size)
        if left >= right or top >= bottom:
            return None
        return slice(top, bottom), slice(left, right)

    def crop(self, rows: slice, cols: slice) -> Head:
        """The same head seen through the pixel window (rows, cols)."""
        return replace(self, X=self.X[rows, cols], Y=self.Y[rows, cols], shade=self.shade[:, rows, cols])

    def side_x(self, side: float, offset: float) -> float:
        """Head-local x of a feature ``offset`` (fraction of rx) from the midline on ``side`` (-1 left, +1 right)."""
        return self.rx * (0.35 * self.yaw + side * offset * (1.0 - 0.45 * side * self.yaw))

    def side_scale(self, side: float) -> float:
        """Foreshortening of a feature's width on ``side``: the far side of a turned head looks narrower."""
        return 1.0 - 0.45 * side * self.yaw
