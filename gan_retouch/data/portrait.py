"""A procedural clean portrait: background, hair, head and neck with soft shading, textured skin and features.

Not photorealistic, but built so that retouching is a real task: the skin carries multi-scale texture (fine
pores and grain, mid-frequency mottling, low-frequency tone variation) that a model must keep. Shapes are laid
out in resolution-free coordinates ([-1, 1] across the image) from a parameter generator, and the coarse noise
fields live on fixed grids, so the same seed draws the same face at any size; only the pore grain follows the
pixel grid up to ``PORE_GRID`` cells. Everything is vectorised torch on whole images (no per-pixel loops).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gan_retouch.data.noise import generator_for, smooth_noise

PORE_GRID = 384  # pores are one noise cell; above this size they keep their physical scale
# The Monk Skin Tone scale (10 tones from lightest to darkest), sRGB: a wide range of real skin tones.
SKIN_TONES = (
    (246, 237, 228), (243, 231, 219), (247, 234, 208), (234, 218, 186), (215, 189, 150),
    (160, 126, 86), (130, 92, 67), (96, 65, 52), (58, 49, 42), (41, 36, 32),
)
HAIR_COLOURS = ((30, 22, 18), (60, 40, 28), (100, 70, 45), (150, 110, 70), (200, 170, 110), (110, 50, 30), (20, 20, 22))
IRIS_COLOURS = ((70, 45, 25), (40, 28, 20), (95, 80, 45), (70, 100, 130), (80, 110, 80))


@dataclass
class Portrait:
    """A clean portrait ``image`` [3,H,W], its ``skin`` mask [1,H,W] and cheek centres (pixels) for the redness."""

    image: torch.Tensor
    skin: torch.Tensor
    cheeks: list[tuple[float, float, float]]


def _colour(rgb: tuple[int, ...]) -> torch.Tensor:
    return torch.tensor(rgb, dtype=torch.float32)[:, None, None] / 255.0


def _rand(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _pick(generator: torch.Generator, options: tuple) -> tuple:
    return options[int(torch.randint(0, len(options), (), generator=generator))]


class _Painter:
    """Layers colours with soft (anti-aliased) coverage and tracks which pixels show skin."""

    def __init__(self, size: int, background: torch.Tensor) -> None:
        self.pixel = 2.0 / size  # one pixel in normalised units: the width of anti-aliased edges
        self.image = background
        self.skin = torch.zeros(1, size, size)

    def coverage(self, inside: torch.Tensor) -> torch.Tensor:
        """Signed distance-like field (> 0 inside, normalised units) -> coverage in [0, 1] over about a pixel."""
        return (inside / self.pixel + 0.5).clamp(0.0, 1.0)

    def paint(self, colour: torch.Tensor, alpha: torch.Tensor, is_skin: bool = False) -> None:
        self.image = self.image + (colour - self.image) * alpha
        self.skin = self.skin + ((1.0 if is_skin else 0.0) - self.skin) * alpha

    def shade(self, factor: float, alpha: torch.Tensor) -> None:
        """Darken (factor < 1) or brighten the pixels by ``alpha``; coverage and skin stay as they are."""
        self.image = self.image * (1.0 + (factor - 1.0) * alpha)


def _ellipse(x: torch.Tensor, y: torch.Tensor, cx: float, cy: float, rx: float, ry: float) -> torch.Tensor:
    """Approximate signed distance to an ellipse (positive inside), in normalised units."""
    radial = torch.sqrt(((x - cx) / rx).square() + ((y - cy) / ry).square())
    return (1.0 - radial) * min(rx, ry)


def _skin_colour(generator: torch.Generator) -> torch.Tensor:
    position = _rand(generator, 0.0, len(SKIN_TONES) - 1.0001)
    low = int(position)
    mix = position - low
    tone = [a + (b - a) * mix for a, b in zip(SKIN_TONES[low], SKIN_TONES[low + 1], strict=True)]
    undertone = torch.tensor([_rand(generator, 0.97, 1.03), 1.0, _rand(generator, 0.95, 1.02)])
    return (torch.tensor(tone) / 255.0 * undertone).clamp(0, 1)[:, None, None]


def _skin_texture(seed_parts: tuple, size: int) -> torch.Tensor:
    """Multiplicative skin texture [3,H,W] around 1: tone variation, mottling, pores and grain."""
    coarse = generator_for(*seed_parts, "texture")
    shape = (size, size)
    tone = smooth_noise(coarse, (6, 6), shape)[0]
    mottling = smooth_noise(coarse, (40, 40), shape, channels=2)
    grid = min(size, PORE_GRID)
    fine = smooth_noise(generator_for(*seed_parts, "pores", grid), (grid, grid), shape)[0]
    pores = (fine - 1.3).clamp_min(0.0)  # sparse dark dots: the deepest cells of the fine noise
    luminance = 1.0 + 0.03 * tone + 0.022 * mottling[0] + 0.018 * fine - 0.10 * pores
    redness = 0.012 * mottling[1]  # blood-flow mottling shifts red against green/blue
    return torch.stack((luminance + redness, luminance - 0.5 * redness, luminance - 0.5 * redness))


def render_portrait(seed_parts: tuple, size: int) -> Portrait:
    """Draw the clean portrait of ``seed_parts`` (e.g. (seed, split, index)) at ``size`` x ``size`` pixels."""
    g = generator_for(*seed_parts, "face")
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) * (2.0 / size) - 1.0
    y, x = torch.meshgrid(coords, coords, indexing="ij")

    # background: a vertical gradient between two muted colours with a soft blotchy variation
    top, bottom = torch.rand(3, generator=g) * 0.6 + 0.2, torch.rand(3, generator=g) * 0.6 + 0.15
    blend = (y + 1.0) / 2.0
    background = top[:, None, None] * (1 - blend) + bottom[:, None, None] * blend
    background = background * (1.0 + 0.04 * smooth_noise(g, (4, 4), (size, size)))
    painter = _Painter(size, background)

    # head pose and proportions; X, Y are head-local coordinates (the head may tilt a little)
    cx, cy = _rand(g, -0.06, 0.06), _rand(g, -0.14, -0.04)
    rx = _rand(g, 0.42, 0.52)
    ry = rx * _rand(g, 1.25, 1.38)
    tilt = math.radians(_rand(g, -7.0, 7.0))
    X = math.cos(tilt) * (x - cx) + math.sin(tilt) * (y - cy)
    Y = -math.sin(tilt) * (x - cx) + math.cos(tilt) * (y - cy)
    skin_base = _skin_colour(g)
    hair_colour = _colour(_pick(g, HAIR_COLOURS))
    hair_texture = 1.0 + 0.18 * smooth_noise(generator_for(*seed_parts, "hair"), (6, 160), (size, size))
    light = torch.tensor([_rand(g, -0.5, 0.5), _rand(g, -0.6, -0.1), 1.0])
    light = light / light.norm()

    # hair behind the head (long hair falls to the shoulders on some faces)
    long_hair = _rand(g, 0.0, 1.0) < 0.5
    back_depth = _rand(g, 0.6, 1.3) if long_hair else 0.25
    back = torch.minimum(_ellipse(X, Y, 0.0, 0.15 * ry * back_depth, rx * 1.2, ry * (0.95 + 0.4 * back_depth)),
                         ry * back_depth + 0.1 - Y)
    painter.paint(hair_colour * 0.8 * hair_texture, painter.coverage(back))

    # shoulders (clothing), then the neck, then the egg-shaped head with ears
    clothing = torch.rand(3, generator=g)[:, None, None] * 0.7 + 0.1
    painter.paint(clothing * (1.0 - 0.15 * (x - cx).abs()), painter.coverage(_ellipse(x, y, cx, 1.3, 1.05, 0.55)))
    shade_skin = skin_base * _skin_texture(seed_parts, size)
    neck = torch.minimum(0.3 * rx - (x - cx).abs(), y - cy).clamp_max(1.0)
    neck_shade = 0.72 + 0.12 * ((y - cy - ry) / 0.4).clamp(0, 1)
    neck_cover = painter.coverage(neck) * (1.0 - painter.coverage(_ellipse(x, y, cx, 1.3, 1.05, 0.55)))
    painter.paint(shade_skin * neck_shade, neck_cover, is_skin=True)
    for side in (-1.0, 1.0):
        ear = _ellipse(X, Y, side * rx * 0.97, 0.02 * ry, 0.11 * rx, 0.22 * ry)
        painter.paint(shade_skin * 0.82, painter.coverage(ear), is_skin=True)
    width_scale = 1.0 - 0.2 * (Y / ry).clamp(0.0, 1.0)  # narrower jaw: an egg-shaped face
    head = (1.0 - torch.sqrt((X / (rx * width_scale)).square() + (Y / ry).square())) * rx
    nx, ny = X / rx, Y / ry
    nz = (1.0 - nx.square() - ny.square()).clamp_min(0.0).sqrt()
    lambert = (nx * light[0] + ny * light[1] + nz * light[2]).clamp_min(0.0)
    face_shade = 0.62 + 0.45 * lambert
    painter.paint(shade_skin * face_shade, painter.coverage(head), is_skin=True)

    # nose: a shaded bridge side, a highlight on the tip and dark nostrils (not skin)
    nose_y = ry * _rand(g, 0.22, 0.3)
    bridge = torch.exp(-((X - 0.07 * rx * (1 if light[0] < 0 else -1)) / (0.05 * rx)).square()) * (
        (Y > -0.1 * ry) & (Y < nose_y)).float()
    painter.shade(0.9, bridge * 0.5 * painter.skin)
    tip = torch.exp(-((X / (0.07 * rx)).square() + ((Y - nose_y + 0.03 * ry) / (0.05 * ry)).square()))
    painter.shade(1.12, tip * 0.5 * painter.skin)
    for side in (-1.0, 1.0):
        nostril = _ellipse(X, Y, side * 0.075 * rx, nose_y + 0.045 * ry, 0.045 * rx, 0.022 * ry)
        painter.paint(shade_skin * 0.35, painter.coverage(nostril))

    # lips with a darker mouth line (not skin)
    lip_y, lip_w = ry * _rand(g, 0.5, 0.56), rx * _rand(g, 0.25, 0.33)
    lip_colour = skin_base * torch.tensor([0.85, 0.52, 0.55])[:, None, None] * face_shade
    span = (1.0 - (X / lip_w).square()).clamp_min(0.0).pow(0.7)
    upper = ry * _rand(g, 0.045, 0.07) * span * (1.0 - 0.3 * torch.exp(-(X / (0.08 * lip_w)).square()))
    lower = ry * _rand(g, 0.06, 0.09) * span
    offset = Y - lip_y
    lips = torch.minimum(torch.minimum(offset + upper, lower - offset), lip_w - X.abs())
    painter.paint(lip_colour, painter.coverage(lips))
    mouth_line = torch.minimum(0.004 - offset.abs(), 0.9 * lip_w - X.abs())
    painter.paint(lip_colour * 0.6, painter.coverage(mouth_line))

    # eyes (sclera, iris, pupil, catchlight, lash line) and brows (not skin)
    eye_y, eye_x = -ry * _rand(g, 0.02, 0.1), rx * _rand(g, 0.34, 0.42)
    eye_w = rx * _rand(g, 0.17, 0.22)
    eye_h = eye_w * _rand(g, 0.38, 0.48)
    iris_colour = _colour(_pick(g, IRIS_COLOURS))
    gaze = _rand(g, -0.25, 0.25) * eye_w
    brow_lift, brow_thick = eye_h * _rand(g, 2.0, 2.8), eye_h * _rand(g, 0.35, 0.6)
    for side in (-1.0, 1.0):
        ex, ey = X - side * eye_x, Y - eye_y
        lid = eye_h * (1.0 - (ex / eye_w).square()).clamp_min(0.0)
        eye = torch.minimum(lid - ey.abs(), eye_w - ex.abs())
        eye_cover = painter.coverage(eye)
        painter.paint(torch.tensor([0.9, 0.88, 0.86])[:, None, None] * face_shade, eye_cover)
        iris = _ellipse(ex, ey, gaze, 0.0, eye_h * 0.95, eye_h * 0.95)
        painter.paint(iris_colour * (0.8 + 0.3 * torch.rand(1, generator=g)), painter.coverage(iris) * eye_cover)
        pupil = _ellipse(ex, ey, gaze, 0.0, eye_h * 0.42, eye_h * 0.42)
        painter.paint(torch.full((3, 1, 1), 0.04), painter.coverage(pupil) * eye_cover)
        glint = _ellipse(ex, ey, gaze - 0.3 * eye_h, -0.3 * eye_h, eye_h * 0.15, eye_h * 0.15)
        painter.paint(torch.full((3, 1, 1), 0.95), painter.coverage(glint) * eye_cover)
        lash = torch.minimum(0.13 * eye_h - (ey + lid).abs(), eye_w * 1.05 - ex.abs())
        painter.paint(hair_colour * 0.5, painter.coverage(lash))
        bx, by = X - side * (eye_x + 0.1 * eye_w), Y - eye_y + brow_lift
        brow_w = eye_w * 1.25
        arch = -0.35 * eye_h * (1.0 - (bx / brow_w).square()) + side * 0.15 * eye_h * bx / brow_w
        brow_half = brow_thick * (1.0 - 0.55 * ((bx / brow_w) * side + 1.0) / 2.0)
        brow = torch.minimum(brow_half / 2 - (by - arch).abs(), brow_w - bx.abs())
        painter.paint(hair_colour * hair_texture, painter.coverage(brow) * 0.85)

    # hair over the forehead: inside a slightly larger ellipse, above a hairline that curves down at the temples
    hairline = -ry * _rand(g, 0.48, 0.62) + 0.35 * ry * (X / rx).square()
    top_hair = torch.minimum(_ellipse(X, Y, 0.0, -0.06 * ry, rx * 1.1, ry * 1.04), hairline - Y)
    painter.paint(hair_colour * hair_texture, painter.coverage(top_hair))

    # soft specular sheen on the forehead and cheeks (part of the clean photo, like real oily highlights)
    sheen = torch.exp(-((X / (0.25 * rx)).square() + ((Y + 0.3 * ry) / (0.1 * ry)).square()))
    painter.shade(1.08, sheen * 0.6 * painter.skin)

    # every skin pixel is coloured now; cheeks (pixels) steer the redness of the tone defect
    to_pixel = size / 2.0
    cheeks = []
    for side in (-1.0, 1.0):
        local_x, local_y = side * 0.45 * rx, 0.18 * ry
        px = cx + math.cos(tilt) * local_x - math.sin(tilt) * local_y
        py = cy + math.sin(tilt) * local_x + math.cos(tilt) * local_y
        cheeks.append(((px + 1.0) * to_pixel, (py + 1.0) * to_pixel, 0.22 * rx * to_pixel))
    return Portrait(painter.image.clamp(0.0, 1.0), painter.skin.clamp(0.0, 1.0), cheeks)
