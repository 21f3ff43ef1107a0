"""Skin defects drawn on a clean image: acne, dark spots, freckle clusters, small marks, and uneven tone.

Each local defect is a multiplicative tint ``lerp(1, tint, alpha)`` (plus a specular highlight for acne), so the
skin texture underneath survives, as on real skin. Every alpha has compact support and is multiplied by the skin
mask, so the blemish mask (``alpha > 0``) covers exactly the pixels a local defect changed. Positions and sizes
are fractions of the image's shorter side, drawn from an explicit generator: the same seed gives the same
defects at any resolution. The global tone defect (redness / uneven tone) is the smooth ``K`` term of
J = K*I + D + I; it is not part of the blemish mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from gan_retouch.data.noise import smooth_noise
from gan_retouch.errors import ConfigError

MIN_RADIUS_PX = 1.2  # keeps the smallest defects visible (and learnable) on 96-128 px crops
PLACEMENT_TRIES = 48  # candidate positions drawn per defect; the first one on skin is used
ACNE_CORE_TINT = (0.97, 0.60, 0.60)
ACNE_HALO_TINT = (1.0, 0.85, 0.83)
SPOT_TINT = (0.74, 0.62, 0.52)
FRECKLE_TINT = (0.84, 0.72, 0.60)
MARK_TINT = (0.93, 0.66, 0.64)
REDNESS_TINT = (1.0, 0.90, 0.89)


@dataclass(frozen=True)
class DefectOptions:
    """How many defects of each kind (inclusive ranges), their size factor and the tone-defect strength."""

    acne: tuple[int, int] = (2, 8)
    spots: tuple[int, int] = (1, 5)
    freckle_clusters: tuple[int, int] = (0, 2)
    marks: tuple[int, int] = (0, 3)
    defect_scale: float = 1.0
    tone_defect: float = 0.5

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> DefectOptions:
        """Build from ``data.synthetic`` (extra keys such as ``size`` are ignored); checks every value."""
        fields = {}
        for key in ("acne", "spots", "freckle_clusters", "marks"):
            if key in values:
                pair = values[key]
                if (
                    not isinstance(pair, (list, tuple)) or len(pair) != 2
                    or not all(isinstance(v, int) and v >= 0 for v in pair) or pair[0] > pair[1]
                ):
                    raise ConfigError(f"data.synthetic.{key} must be [min, max] counts with 0 <= min <= max, got {pair!r}")
                fields[key] = (int(pair[0]), int(pair[1]))
        for key in ("defect_scale", "tone_defect"):
            if key in values:
                value = float(values[key])
                upper = 1.0 if key == "tone_defect" else 10.0
                if not 0.0 <= value <= upper:
                    raise ConfigError(f"data.synthetic.{key} must be between 0 and {upper:g}, got {value}")
                fields[key] = value
        return cls(**fields)


class _Canvas:
    """Accumulates multiplicative gain, highlight and blemish alpha, one local window at a time."""

    def __init__(self, skin: torch.Tensor) -> None:
        self.skin = skin[0]
        height, width = self.skin.shape
        self.gain = torch.ones(3, height, width)
        self.highlight = torch.zeros(height, width)
        self.alpha = torch.zeros(height, width)

    def window(self, cx: float, cy: float, reach: float) -> tuple[slice, slice, torch.Tensor, torch.Tensor] | None:
        """Slices around pixel (cx, cy) with half-size ``reach`` and the pixel-centre offsets (dx, dy)."""
        height, width = self.skin.shape
        x0, x1 = max(int(cx - reach), 0), min(int(math.ceil(cx + reach)) + 1, width)
        y0, y1 = max(int(cy - reach), 0), min(int(math.ceil(cy + reach)) + 1, height)
        if x0 >= x1 or y0 >= y1:
            return None
        dy = torch.arange(y0, y1, dtype=torch.float32)[:, None] + 0.5 - cy
        dx = torch.arange(x0, x1, dtype=torch.float32)[None, :] + 0.5 - cx
        return slice(y0, y1), slice(x0, x1), dx, dy

    def tint(self, rows: slice, cols: slice, alpha: torch.Tensor, tint: tuple[float, ...]) -> None:
        alpha = alpha * self.skin[rows, cols]
        colour = torch.tensor(tint)[:, None, None]
        self.gain[:, rows, cols] *= 1.0 + (colour - 1.0) * alpha
        self.alpha[rows, cols] = torch.maximum(self.alpha[rows, cols], alpha)

    def shine(self, rows: slice, cols: slice, alpha: torch.Tensor) -> None:
        alpha = alpha * self.skin[rows, cols]
        self.highlight[rows, cols] = torch.maximum(self.highlight[rows, cols], alpha)
        self.alpha[rows, cols] = torch.maximum(self.alpha[rows, cols], alpha)


def _bump(distance: torch.Tensor, power: float = 1.5) -> torch.Tensor:
    """Radial profile 1 at the centre, exactly 0 from ``distance >= 1`` on (compact support)."""
    return (1.0 - distance.square()).clamp_min(0.0).pow(power)


def _rand(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _count(generator: torch.Generator, bounds: tuple[int, int]) -> int:
    return int(torch.randint(bounds[0], bounds[1] + 1, (), generator=generator))


def _irregular_distance(dx: torch.Tensor, dy: torch.Tensor, radius: float, generator: torch.Generator) -> torch.Tensor:
    """Distance in units of a radius that wobbles with the angle (irregular, not perfectly round blobs)."""
    theta = torch.atan2(dy, dx)
    wobble = 1.0 + _rand(generator, 0.0, 0.18) * torch.sin(2 * theta + _rand(generator, 0, 6.3))
    wobble = wobble + _rand(generator, 0.0, 0.12) * torch.sin(3 * theta + _rand(generator, 0, 6.3))
    return torch.sqrt(dx.square() + dy.square()) / (radius * wobble)


def _place(skin: torch.Tensor, generator: torch.Generator) -> tuple[float, float] | None:
    """A random position (fractions of width, height) that lies on skin, or None when none was found."""
    height, width = skin.shape
    candidates = torch.rand((PLACEMENT_TRIES, 2), generator=generator)
    rows = (candidates[:, 1] * height).long().clamp_max(height - 1)
    cols = (candidates[:, 0] * width).long().clamp_max(width - 1)
    on_skin = (skin[rows, cols] > 0.98).nonzero()
    if len(on_skin) == 0:
        return None
    chosen = candidates[int(on_skin[0])]
    return float(chosen[0]), float(chosen[1])


def _acne(canvas: _Canvas, x: float, y: float, radius: float, generator: torch.Generator) -> None:
    view = canvas.window(x, y, radius * 2.4 + 1)
    if view is None:
        return
    rows, cols, dx, dy = view
    distance = _irregular_distance(dx, dy, radius, generator)
    strength = _rand(generator, 0.6, 1.0)
    canvas.tint(rows, cols, _bump(distance / 2.3, 2.0) * strength, ACNE_HALO_TINT)
    canvas.tint(rows, cols, _bump(distance, 1.2) * strength, ACNE_CORE_TINT)
    offset = 0.35 * radius
    glint = torch.sqrt((dx + offset).square() + (dy + offset).square()) / max(0.4 * radius, 0.7)
    canvas.shine(rows, cols, _bump(glint, 2.0) * _rand(generator, 0.15, 0.35) * strength)


def _pigment(
    canvas: _Canvas, x: float, y: float, radius: float, tint: tuple[float, ...], strength: float,
    generator: torch.Generator,
) -> None:
    view = canvas.window(x, y, radius * 1.4 + 1)
    if view is None:
        return
    rows, cols, dx, dy = view
    angle, stretch = _rand(generator, 0, math.pi), _rand(generator, 1.0, 1.6)
    cos, sin = math.cos(angle), math.sin(angle)
    u, v = (cos * dx + sin * dy) / stretch, (-sin * dx + cos * dy)
    distance = _irregular_distance(u, v, radius, generator)
    plateau = ((1.25 - distance) / 0.5).clamp(0.0, 1.0)  # flat centre, soft rim, zero from 1.25 radii on
    canvas.tint(rows, cols, plateau * strength, tint)


def _mark(canvas: _Canvas, x: float, y: float, length: float, width: float, generator: torch.Generator) -> None:
    """A short scratch: a reddish line segment with soft sides."""
    view = canvas.window(x, y, length / 2 + width * 2 + 1)
    if view is None:
        return
    rows, cols, dx, dy = view
    angle = _rand(generator, 0, math.pi)
    along = (math.cos(angle) * dx + math.sin(angle) * dy).clamp(-length / 2, length / 2)
    off_x, off_y = dx - along * math.cos(angle), dy - along * math.sin(angle)
    distance = torch.sqrt(off_x.square() + off_y.square()) / width
    canvas.tint(rows, cols, _bump(distance, 1.0) * _rand(generator, 0.6, 1.0), MARK_TINT)


def _radius(fraction: float, side: int, options: DefectOptions) -> float:
    return max(fraction * side * options.defect_scale, MIN_RADIUS_PX)


def tone_field(skin: torch.Tensor, generator: torch.Generator, cheeks: list[tuple[float, float, float]]) -> torch.Tensor:
    """A smooth [0, 1] field of redness: low-frequency blotches plus optional (x, y, radius) cheek areas (pixels)."""
    height, width = skin.shape[-2:]
    field = (smooth_noise(generator, (5, 5), (height, width))[0] * 0.5 + 0.3).clamp(0.0, 1.0)
    ys = torch.arange(height, dtype=torch.float32)[:, None] + 0.5
    xs = torch.arange(width, dtype=torch.float32)[None, :] + 0.5
    for cx, cy, radius in cheeks:
        blob = torch.exp(-((xs - cx).square() + (ys - cy).square()) / (2 * radius**2))
        field = torch.maximum(field, blob)
    return field


def add_defects(
    clean: torch.Tensor,
    skin: torch.Tensor,
    generator: torch.Generator,
    options: DefectOptions,
    cheeks: list[tuple[float, float, float]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw defects on the skin of ``clean`` ``[3,H,W]``; returns the blemished image and the blemish mask ``[1,H,W]``.

    ``skin`` ``[1,H,W]`` in [0, 1] limits every defect; ``cheeks`` (pixel x, y, radius) concentrates the redness.
    """
    height, width = clean.shape[-2:]
    side = min(height, width)
    canvas = _Canvas(skin)
    plan = (
        ("acne", options.acne), ("spots", options.spots),
        ("freckle_clusters", options.freckle_clusters), ("marks", options.marks),
    )
    for kind, bounds in plan:
        for _ in range(_count(generator, bounds)):
            spot = _place(canvas.skin, generator)
            if spot is None:
                continue
            x, y = spot[0] * width, spot[1] * height
            if kind == "acne":
                _acne(canvas, x, y, _radius(_rand(generator, 0.006, 0.012), side, options), generator)
            elif kind == "spots":
                radius = _radius(_rand(generator, 0.008, 0.02), side, options)
                _pigment(canvas, x, y, radius, SPOT_TINT, _rand(generator, 0.5, 0.9), generator)
            elif kind == "freckle_clusters":
                spread = _rand(generator, 0.03, 0.07) * side * options.defect_scale
                for _ in range(_count(generator, (6, 18))):
                    fx = x + spread * float(torch.randn((), generator=generator))
                    fy = y + spread * float(torch.randn((), generator=generator))
                    radius = _radius(_rand(generator, 0.003, 0.006), side, options)
                    _pigment(canvas, fx, fy, radius, FRECKLE_TINT, _rand(generator, 0.4, 0.8), generator)
            else:
                length = _rand(generator, 0.02, 0.06) * side * options.defect_scale
                _mark(canvas, x, y, length, _radius(0.002, side, options), generator)
    blemished = clean * canvas.gain
    blemished = blemished + (0.95 - blemished).clamp_min(0.0) * canvas.highlight
    if options.tone_defect > 0:
        redness = tone_field(skin, generator, cheeks or []) * skin[0] * options.tone_defect
        tint = torch.tensor(REDNESS_TINT)[:, None, None]
        blemished = blemished * (1.0 + (tint - 1.0) * redness)
    return blemished.clamp(0.0, 1.0), (canvas.alpha > 0).to(torch.float32)[None]
