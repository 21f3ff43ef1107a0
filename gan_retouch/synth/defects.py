"""Skin defects drawn on a clean image, each in a small window, with soft shaded edges and many colours.

Kinds: ``acne`` (raised red papule, halo, light-side shading, sometimes a glint), ``pustule`` (a papule with a
yellow-white head), ``post_acne`` (flat red, brown or purple mark), ``dark_spot`` (brown pigment), ``redness``
(a large soft patch), ``blotch`` (a large, strong discolouration: a red, brown or purple patch with a ragged
edge that partly covers the texture), ``pores`` (a patch of enlarged, darker pores), ``lines`` (fine curved wrinkles with a lit edge), ``under_eye`` (dark, bluish crescents under both eyes), and
``mottle`` (uneven tone: a patch of faint, blotchy light and redness variations a few pores across, which a
retoucher evens while keeping the pores), and ``freckles`` when a family says they are defects. Each defect scales its tint per channel by its own random
factor, so every kind comes in a range of hues. Most are multiplicative tints, so the skin texture underneath
survives, as on real skin; a pustule head and a blotch cover it partly. Every alpha has compact support and is multiplied
by the skin mask. Sizes are fractions of a reference length: the image's shorter side for the procedural portraits
(the same seed gives the same defects at any resolution), a multiple of the face width on real photos (a blemish
is as large relative to the face in a 24-megapixel portrait as in a 1024 px crop).
"""

from __future__ import annotations

import math

import torch

from gan_retouch.synth.noise import Draws, smooth_noise

MIN_RADIUS_PX = 1.0  # keeps the smallest defects visible (and learnable) on 96-128 px crops
PLACEMENT_TRIES = 48  # candidate positions drawn per defect; the first one on skin is used
CHANNEL_JITTER = (0.8, 1.2)  # each defect scales each channel's tint by a factor in this range: hues vary per defect


def _bump(distance: torch.Tensor, power: float = 1.5) -> torch.Tensor:
    """Radial profile 1 at the centre, exactly 0 from ``distance >= 1`` on (compact support)."""
    return (1.0 - distance.square()).clamp_min(0.0).pow(power)


class DefectLayer:
    """Accumulates the defects of one face: a multiplicative gain, and a cover colour with its alpha."""

    def __init__(
        self, clean: torch.Tensor, skin: torch.Tensor, draws: Draws, eyes: list[tuple[float, float]], head_radius: float,
        reference: float | None = None,
    ) -> None:
        self.clean = clean
        self.skin = skin[0]
        self.draws = draws
        self.eyes = eyes
        self.head_radius = head_radius
        height, width = self.skin.shape
        self.placeable = (self.skin > 0.98).numpy()  # indexing NumPy per try is ~50x cheaper than a tensor
        self.side = float(reference) if reference is not None else min(height, width)  # what defect sizes scale with
        self.gain = torch.ones(3, height, width)
        self.cover = torch.zeros(3, height, width)
        self.cover_alpha = torch.zeros(1, height, width)
        self.jitter = torch.ones(3, 1, 1)

    def apply(self, clean: torch.Tensor) -> torch.Tensor:
        """The clean image with every defect drawn so far."""
        tinted = clean * self.gain
        return (tinted + (self.cover - tinted) * self.cover_alpha).clamp(0.0, 1.0)

    # -- placing ---------------------------------------------------------------------------------------------
    def _window(self, cx: float, cy: float, reach: float) -> tuple[slice, slice, torch.Tensor, torch.Tensor] | None:
        height, width = self.skin.shape
        x0, x1 = max(int(cx - reach), 0), min(int(math.ceil(cx + reach)) + 1, width)
        y0, y1 = max(int(cy - reach), 0), min(int(math.ceil(cy + reach)) + 1, height)
        if x0 >= x1 or y0 >= y1:
            return None
        dy = torch.arange(y0, y1, dtype=torch.float32)[:, None] + 0.5 - cy
        dx = torch.arange(x0, x1, dtype=torch.float32)[None, :] + 0.5 - cx
        return slice(y0, y1), slice(x0, x1), dx, dy

    def _tint(self, rows: slice, cols: slice, alpha: torch.Tensor, tint: tuple[float, float, float]) -> None:
        alpha = alpha * self.skin[rows, cols]
        colour = torch.tensor(tint)[:, None, None]
        self.gain[:, rows, cols] *= 1.0 + (colour - 1.0) * self.jitter * alpha

    def _cover(self, rows: slice, cols: slice, alpha: torch.Tensor, colour: torch.Tensor) -> None:
        """Cover the skin with a flat ``colour`` [3] at ``alpha``; where covers overlap, the more opaque one wins."""
        alpha = alpha * self.skin[rows, cols]
        current = self.cover_alpha[0, rows, cols]
        self.cover[:, rows, cols] = torch.where(alpha > current, colour[:, None, None], self.cover[:, rows, cols])
        self.cover_alpha[0, rows, cols] = torch.maximum(current, alpha)

    def _place(self) -> tuple[float, float] | None:
        """A random pixel position on skin, or None when none was found."""
        height, width = self.skin.shape
        for _ in range(PLACEMENT_TRIES):
            x, y = self.draws.uniform(0, width), self.draws.uniform(0, height)
            if self.placeable[int(y), int(x)]:
                return x, y
        return None

    def _irregular(self, dx: torch.Tensor, dy: torch.Tensor, radius: float) -> torch.Tensor:
        """Distance in radii, with a radius that wobbles with the angle (irregular, not perfectly round blobs)."""
        d = self.draws
        theta = torch.atan2(dy, dx)
        wobble = 1.0 + d.uniform(0.0, 0.2) * torch.sin(2 * theta + d.uniform(0, 6.3))
        wobble = wobble + d.uniform(0.0, 0.12) * torch.sin(3 * theta + d.uniform(0, 6.3))
        angle, stretch = d.uniform(0, math.pi), d.uniform(1.0, 1.5)
        u = (math.cos(angle) * dx + math.sin(angle) * dy) / stretch
        v = -math.sin(angle) * dx + math.cos(angle) * dy
        return torch.sqrt(u.square() + v.square()) / (radius * wobble)

    def radius(self, low: float, high: float, scale: float) -> float:
        """A radius in pixels: a fraction in [low, high) of the image's shorter side, times ``scale``."""
        return max(self.draws.uniform(low, high) * self.side * scale, MIN_RADIUS_PX)

    # -- kinds -------------------------------------------------------------------------------------------------
    def add(self, kind: str, strength: float, scale: float) -> None:
        """Draw one defect of ``kind`` (``under_eye`` draws both eyes) with contrast ``strength`` in [0, 1].

        Each defect gets its own channel jitter, so that one kind comes in a range of hues, not one fixed tint.
        """
        self.jitter = torch.tensor([self.draws.uniform(*CHANNEL_JITTER) for _ in range(3)])[:, None, None]
        if kind == "under_eye":
            self._under_eye(strength, scale)
            return
        spot = self._place()
        if spot is not None:
            getattr(self, f"_{kind}")(spot[0], spot[1], strength, scale)

    def _acne(self, x: float, y: float, strength: float, scale: float, head: bool = False) -> None:
        d = self.draws
        radius = self.radius(0.005, 0.015, scale)
        view = self._window(x, y, radius * 2.4 + 1)
        if view is None:
            return
        rows, cols, dx, dy = view
        distance = self._irregular(dx, dy, radius)
        red, brown = d.uniform(0.45, 0.8) * strength, d.uniform(0.0, 0.15) * strength
        self._tint(rows, cols, _bump(distance / 2.3, 2.0) * 0.5, (1.0 - brown * 0.3, 1.0 - red * 0.35, 1.0 - red * 0.3))
        self._tint(rows, cols, _bump(distance, 1.2), (1.0 - brown * 0.5, 1.0 - red, 1.0 - red * 0.9))
        lit = -(dx * 0.6 + dy * 0.8) / radius  # raised: the side towards the light is brighter
        self._tint(rows, cols, _bump(distance, 1.0) * lit.clamp(-1, 1), (1.0 + 0.12 * strength,) * 3)
        if head:
            size = max(radius * d.uniform(0.3, 0.55), 0.7)
            alpha = _bump(torch.sqrt(dx.square() + dy.square()) / size, 1.0) * d.uniform(0.5, 0.9) * strength
            self._cover(rows, cols, alpha, torch.tensor([0.96, d.uniform(0.88, 0.95), d.uniform(0.65, 0.85)]))

    def _pustule(self, x: float, y: float, strength: float, scale: float) -> None:
        self._acne(x, y, strength, scale, head=True)

    def _flat(self, x: float, y: float, radius: float, tint: tuple[float, float, float]) -> None:
        view = self._window(x, y, radius * 1.6 + 1)
        if view is not None:
            rows, cols, dx, dy = view
            plateau = ((1.3 - self._irregular(dx, dy, radius)) / self.draws.uniform(0.3, 0.8)).clamp(0.0, 1.0)
            self._tint(rows, cols, plateau, tint)

    def _post_acne(self, x: float, y: float, strength: float, scale: float) -> None:
        d = self.draws
        a = strength * d.uniform(0.7, 1.3)
        tint = d.pick(((1 - 0.1 * a, 1 - 0.4 * a, 1 - 0.35 * a), (1 - 0.22 * a, 1 - 0.4 * a, 1 - 0.45 * a),
                       (1 - 0.2 * a, 1 - 0.4 * a, 1 - 0.18 * a)))
        self._flat(x, y, self.radius(0.005, 0.016, scale), tint)

    def _dark_spot(self, x: float, y: float, strength: float, scale: float) -> None:
        a = strength * self.draws.uniform(0.6, 1.3)
        self._flat(x, y, self.radius(0.006, 0.025, scale), (1 - 0.3 * a, 1 - 0.4 * a, 1 - 0.48 * a))

    def _freckles(self, x: float, y: float, strength: float, scale: float) -> None:
        d = self.draws
        spread = d.uniform(0.03, 0.07) * self.side * scale
        for _ in range(d.integer(6, 18)):
            a = strength * d.uniform(0.4, 0.8)
            fx, fy = x + spread * d.normal(), y + spread * d.normal()
            self._flat(fx, fy, self.radius(0.002, 0.005, scale), (1 - 0.16 * a, 1 - 0.28 * a, 1 - 0.4 * a))

    def _redness(self, x: float, y: float, strength: float, scale: float) -> None:
        radius = self.radius(0.03, 0.09, scale)
        view = self._window(x, y, radius * 1.5 + 1)
        if view is not None:
            rows, cols, dx, dy = view
            a = strength * self.draws.uniform(0.3, 0.7)
            self._tint(rows, cols, _bump(self._irregular(dx, dy, radius), 2.0), (1.0, 1 - 0.16 * a, 1 - 0.13 * a))

    def _blotch(self, x: float, y: float, strength: float, scale: float) -> None:
        """A large discolouration (a rosacea patch, melasma, a bruise, a healing mark), up to ten times a spot's size.

        Its edge is ragged and shaded over a random width; up to 60 % of the texture under it is covered by the
        patch's own flat colour (the tinted mean of the skin it sits on), so opacity varies as well as contrast.
        """
        d = self.draws
        radius = self.radius(0.02, 0.06, scale)
        view = self._window(x, y, radius * 1.8 + 1)
        if view is None:
            return
        rows, cols, dx, dy = view
        ragged = self._irregular(dx, dy, radius) + 0.15 * smooth_noise(d.generator, (4, 4), (dy.shape[0], dx.shape[1]))[0]
        plateau = ((1.3 - ragged) / d.uniform(0.3, 1.0)).clamp(0.0, 1.0)
        a = strength * d.uniform(0.4, 1.1)
        tint = d.pick(((1 - 0.08 * a, 1 - 0.35 * a, 1 - 0.3 * a), (1 - 0.25 * a, 1 - 0.35 * a, 1 - 0.45 * a),
                       (1 - 0.25 * a, 1 - 0.4 * a, 1 - 0.15 * a)))
        self._tint(rows, cols, plateau, tint)
        weights = plateau * self.skin[rows, cols]  # > 0 at the centre, which _place put on skin
        mean = (self.clean[:, rows, cols] * weights).sum((1, 2)) / weights.sum().clamp_min(1e-6)
        colour = (mean * (1.0 + (torch.tensor(tint) - 1.0) * self.jitter[:, 0, 0])).clamp(0.0, 1.0)
        self._cover(rows, cols, plateau * d.uniform(0.0, 0.6) * strength, colour)

    def _mottle(self, x: float, y: float, strength: float, scale: float) -> None:
        d = self.draws
        radius = self.radius(0.08, 0.2, scale)
        view = self._window(x, y, radius + 1)
        if view is None:
            return
        rows, cols, dx, dy = view
        shape = (dy.shape[0], dx.shape[1])
        cells = max(2, round(shape[0] / max(2.0, d.uniform(0.015, 0.035) * self.side * scale)))
        field = smooth_noise(d.generator, (cells, cells), shape)[0].clamp(-2.5, 2.5)
        envelope = _bump(self._irregular(dx, dy, radius), 1.0)
        a = strength * d.uniform(0.015, 0.04)
        light, red = field.clamp_max(0.0), field.clamp_min(0.0)  # darker blotches, and redder ones
        self._tint(rows, cols, light.abs() * envelope, (1 - a, 1 - 1.1 * a, 1 - 1.1 * a))
        self._tint(rows, cols, red * envelope, (1.0, 1 - 0.8 * a, 1 - 0.6 * a))

    def _pores(self, x: float, y: float, strength: float, scale: float) -> None:
        radius = self.radius(0.025, 0.06, scale)
        view = self._window(x, y, radius + 1)
        if view is not None:
            rows, cols, dx, dy = view
            shape = (dy.shape[0], dx.shape[1])
            cells = max(2, int(shape[0] / max(1.6, 0.005 * self.side * scale)))
            dots = (smooth_noise(self.draws.generator, (cells, cells), shape)[0] - 1.0).clamp(0.0, 1.5)
            envelope = _bump(torch.sqrt(dx.square() + dy.square()) / radius, 1.0)
            a = strength * self.draws.uniform(0.2, 0.45)
            self._tint(rows, cols, dots * envelope, (1 - a * 0.8, 1 - a, 1 - a))

    def _lines(self, x: float, y: float, strength: float, scale: float) -> None:
        d = self.draws
        length, width = self.radius(0.012, 0.04, scale), max(d.uniform(0.0015, 0.004) * self.side * scale, 0.6)
        view = self._window(x, y, length + 3 * width + 1)
        if view is None:
            return
        rows, cols, dx, dy = view
        angle, bend = d.uniform(0, math.pi), d.uniform(-0.3, 0.3)
        along = math.cos(angle) * dx + math.sin(angle) * dy
        across = -math.sin(angle) * dx + math.cos(angle) * dy - bend * along.square() / length
        fade = _bump(along / length, 1.0)
        a = strength * d.uniform(0.4, 0.9)
        self._tint(rows, cols, _bump(across / width, 1.0) * fade, (1 - 0.22 * a, 1 - 0.25 * a, 1 - 0.25 * a))
        self._tint(rows, cols, _bump((across - 1.6 * width) / width, 1.0) * fade, (1 + 0.06 * a,) * 3)

    def _under_eye(self, strength: float, scale: float) -> None:
        d = self.draws
        a = strength * d.uniform(0.3, 0.8)
        width, height = self.head_radius * d.uniform(0.2, 0.28) * scale, self.head_radius * d.uniform(0.06, 0.1) * scale
        drop = self.head_radius * d.uniform(0.12, 0.17)
        tint = (1 - 0.18 * a, 1 - 0.21 * a, 1 - 0.14 * a)
        for ex, ey in self.eyes:
            view = self._window(ex, ey + drop, width + 1)
            if view is not None:
                rows, cols, dx, dy = view
                self._tint(rows, cols, _bump(torch.sqrt((dx / width).square() + (dy / height).square()), 1.5), tint)
