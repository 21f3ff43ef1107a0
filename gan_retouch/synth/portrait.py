"""A procedural clean portrait: background, hair, head and neck under a random light, textured skin, features.

Not photorealistic, but randomised widely so that the only thing constant across pairs is the retouching task:
head size (close-ups to head-and-shoulders), position, tilt and turn, skin tones across the whole Monk scale, cast shadows,
skin texture (pores at two scales, grain, mottling, tone) with per-face strength, hair, brows, lashes, lips and
teeth, stubble, glasses, light direction and colour, six kinds of background. Look-alikes that a retoucher keeps
(moles, freckles, skin highlights) are part of the clean portrait, so they are identical in input and target.
Shapes live in resolution-free coordinates ([-1, 1] across the image) and the coarse noise fields on fixed
grids, so the same seed draws the same face at any size; only the pore grain follows the pixel grid up to
``PORE_GRID`` cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gan_retouch.synth.background import draw_background
from gan_retouch.synth.family import SynthOptions
from gan_retouch.synth.features import draw_eyes, draw_glasses, draw_nose_and_mouth, draw_stubble
from gan_retouch.synth.noise import Draws, generator_for, smooth_noise
from gan_retouch.synth.paint import Head, Painter, colour, ellipse

PORE_GRID = 384  # pores are one noise cell; above this size they keep their physical scale
# The Monk Skin Tone scale (10 tones from lightest to darkest), sRGB: a wide range of real skin tones.
SKIN_TONES = (
    (246, 237, 228), (243, 231, 219), (247, 234, 208), (234, 218, 186), (215, 189, 150),
    (160, 126, 86), (130, 92, 67), (96, 65, 52), (58, 49, 42), (41, 36, 32),
)
HAIR_COLOURS = ((30, 22, 18), (60, 40, 28), (100, 70, 45), (150, 110, 70), (200, 170, 110), (110, 50, 30),
                (20, 20, 22), (170, 170, 170), (230, 225, 215))


@dataclass
class Portrait:
    """A clean portrait ``image`` [3,H,W], its ``skin`` mask [1,H,W], and landmarks in pixels for the defects:
    ``eyes`` (x, y) centres, ``cheeks`` (x, y, radius), ``radius`` (the head's half-width)."""

    image: torch.Tensor
    skin: torch.Tensor
    eyes: list[tuple[float, float]]
    cheeks: list[tuple[float, float, float]]
    radius: float


def skin_colour(draws: Draws, tone_range: tuple[float, float]) -> torch.Tensor:
    """A skin colour ``[3,1,1]`` at a position of the Monk scale inside ``tone_range`` (0 lightest, 1 darkest)."""
    position = draws.uniform(*tone_range) * (len(SKIN_TONES) - 1.0001)
    low = int(position)
    mix = position - low
    tone = [a + (b - a) * mix for a, b in zip(SKIN_TONES[low], SKIN_TONES[low + 1], strict=True)]
    undertone = torch.tensor([draws.uniform(0.96, 1.04), 1.0, draws.uniform(0.94, 1.03)])
    return (torch.tensor(tone) / 255.0 * undertone).clamp(0, 1)[:, None, None]


def skin_texture(seed_parts: tuple, size: int, strength: float) -> torch.Tensor:
    """Multiplicative skin texture [3,H,W] around 1: tone, mottling, fine grain, pores at two scales.

    Pores are darker and slightly warmer than the skin around them; mottling moves red against green and blue.
    """
    coarse = generator_for(*seed_parts, "texture")
    shape = (size, size)
    tone = smooth_noise(coarse, (6, 6), shape)[0]
    mottling = smooth_noise(coarse, (40, 40), shape, channels=2)
    grid = min(size, PORE_GRID)
    fine = smooth_noise(generator_for(*seed_parts, "pores", grid), (grid, grid), shape)[0]
    medium = smooth_noise(generator_for(*seed_parts, "pores2"), (grid // 3 + 1, grid // 3 + 1), shape)[0]
    pores = (fine - 1.3).clamp_min(0.0) + 0.3 * (medium - 1.6).clamp_min(0.0)
    luminance = 1.0 + 0.03 * tone + strength * (0.02 * mottling[0] + 0.016 * fine - 0.10 * pores)
    redness = strength * 0.012 * mottling[1] + 0.02 * pores
    return torch.stack((luminance + redness, luminance - 0.5 * redness, luminance - 0.8 * redness))


def _lookalikes(painter: Painter, head: Head, draws: Draws, freckles: bool) -> None:
    """Moles and beauty marks (0-3), a freckle field on some faces: kept by a retoucher, so part of the clean photo."""
    X, Y = head.X, head.Y
    for _ in range(draws.integer(0, 3)):
        mx, my = draws.uniform(-0.8, 0.8) * head.rx, draws.uniform(-0.6, 0.8) * head.ry
        radius = head.rx * draws.uniform(0.012, 0.03)
        mole = painter.coverage(ellipse(X, Y, mx, my, radius, radius * draws.uniform(0.8, 1.2)), 1.5)
        painter.paint(head.skin * colour((120, 80, 65)) * draws.uniform(0.4, 1.0) * head.shade, mole * painter.skin, skin=None)
    if freckles and draws.chance(0.3):
        field = smooth_noise(draws.generator, (60, 60), tuple(X.shape[-2:]))
        spots = ((field - 1.2) * 2.0).clamp(0.0, 1.0)
        zone = torch.exp(-(((X - head.side_x(1, 0)) / (0.55 * head.rx)).square() + ((Y - 0.05 * head.ry) / (0.25 * head.ry)).square()))
        painter.shade(draws.uniform(0.8, 0.92), spots * zone * painter.skin)


def render_portrait(seed_parts: tuple, size: int, options: SynthOptions | None = None) -> Portrait:
    """Draw the clean portrait of ``seed_parts`` (e.g. (seed, split, index)) at ``size`` x ``size`` pixels."""
    options = options or SynthOptions()
    draws = Draws(*seed_parts, "face")
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) * (2.0 / size) - 1.0
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    base = skin_colour(draws, options.skin_tone)
    painter = Painter(size, draw_background(draws.pick(options.backgrounds), draws, x, y, base))

    scale = draws.uniform(*options.face_scale)
    rx = 0.45 * scale
    ry = rx * draws.uniform(1.2, 1.42)
    cx, cy = draws.uniform(-0.3, 0.3) * min(scale, 1.0), draws.uniform(-0.2, 0.05) * min(scale, 1.0)
    tilt = math.radians(draws.uniform(-12.0, 12.0))
    yaw = draws.uniform(-0.35, 0.35)
    X = math.cos(tilt) * (x - cx) + math.sin(tilt) * (y - cy)
    Y = -math.sin(tilt) * (x - cx) + math.cos(tilt) * (y - cy)
    light = torch.tensor([draws.uniform(-0.8, 0.8), draws.uniform(-0.7, 0.1), 1.0])
    light = light / light.norm()
    ambient = draws.uniform(0.45, 0.7)
    nx, ny = (X - 0.35 * yaw * rx) / rx, Y / ry
    nz = (1.0 - nx.square() - ny.square()).clamp_min(0.0).sqrt()
    lambert = (nx * light[0] + ny * light[1] + nz * light[2]).clamp_min(0.0)
    head = Head(X, Y, rx, ry, yaw, (ambient + (1.05 - ambient) * lambert)[None] * 1.1, base,
                colour(draws.pick(HAIR_COLOURS)) * draws.uniform(0.8, 1.1), (cx, cy), tilt, size)
    strands = (smooth_noise(generator_for(*seed_parts, "hair"), (6, 160), (size, size))[0:1] * 0.5 + 0.5).clamp(0, 1)
    has_hair = draws.chance(options.hair)

    if has_hair and draws.chance(0.5):  # long hair behind the head, down to the shoulders
        depth = draws.uniform(0.6, 1.3)
        back = torch.minimum(ellipse(X, Y, 0.0, 0.15 * ry * depth, rx * 1.2, ry * (0.95 + 0.4 * depth)), ry * depth + 0.1 - Y)
        painter.paint(head.hair * 0.75 * (0.7 + 0.6 * strands), painter.coverage(back))
    shoulders = ellipse(x, y, cx, cy + ry + 0.75 * scale, 1.3 * scale, 0.6 * scale)
    clothing = torch.tensor([draws.uniform(0.05, 0.85) for _ in range(3)])[:, None, None]
    texture = skin_texture(seed_parts, size, draws.uniform(0.5, 1.6)) * base
    neck = torch.minimum(0.32 * rx - (X - 0.2 * yaw * rx).abs(), Y).clamp_max(1.0)
    neck_shade = 0.62 + 0.2 * ((Y - ry) / (0.6 * ry)).clamp(0, 1)
    painter.paint(texture * neck_shade, painter.coverage(neck), skin=1.0)
    painter.paint(clothing * (1.0 - 0.15 * (x - cx).abs()), painter.coverage(shoulders))
    for side in (-1.0, 1.0):
        ear = ellipse(X, Y, head.side_x(side, 0.97 * (1 + 0.45 * side * yaw)), 0.02 * ry, 0.11 * rx * head.side_scale(side), 0.22 * ry)
        painter.paint(texture * 0.8 * head.shade, painter.coverage(ear), skin=1.0)
    width = 1.0 - 0.2 * (Y / ry).clamp(0.0, 1.0)  # narrower jaw: an egg-shaped face
    outline = (1.0 - torch.sqrt((X / (rx * width)).square() + (Y / ry).square())) * rx
    painter.paint(texture * head.shade, painter.coverage(outline), skin=1.0)
    if options.lookalikes:
        _lookalikes(painter, head, draws, not options.freckles_are_defects)
    eyes = draw_eyes(painter, head, draws, strands)
    lip_y = draw_nose_and_mouth(painter, head, draws, float(light[0]))
    if draws.chance(options.stubble):
        draw_stubble(painter, head, draws, lip_y, size)
    if has_hair:  # hair over the forehead: above a hairline that curves down at the temples
        height = draws.uniform(0.42, 0.7) if draws.chance(0.6) else draws.uniform(0.7, 0.9)  # fringe or forehead
        parting = draws.uniform(-0.5, 0.5) * ry if draws.chance(0.5) else 0.0  # a side-swept fringe slopes
        hairline = -ry * height + draws.uniform(0.2, 0.45) * ry * (X / rx).square() + parting * (X / rx)
        top = torch.minimum(ellipse(X, Y, 0.0, -0.06 * ry, rx * 1.1, ry * 1.05), hairline - Y)
        painter.paint(head.hair * (0.6 + 0.7 * strands) * head.shade, painter.coverage(top, 1.5))
    if draws.chance(options.glasses):
        draw_glasses(painter, head, draws, eyes)
    if options.lookalikes:  # specular sheen on forehead and cheeks, like real oily highlights
        sheen = torch.exp(-(((X - head.side_x(1, 0)) / (0.25 * rx)).square() + ((Y + 0.3 * ry) / (0.1 * ry)).square()))
        painter.shade(draws.uniform(1.03, 1.12), sheen * painter.skin)
    if draws.chance(0.3):  # a cast shadow (a hat brim, a window frame) with a soft edge across the scene
        angle, offset = draws.uniform(0, 2 * math.pi), draws.uniform(-0.6, 0.6)
        edge = (math.cos(angle) * x + math.sin(angle) * y - offset) / draws.uniform(0.03, 0.25)
        painter.shade(draws.uniform(0.6, 0.9), torch.sigmoid(edge)[None])
    temperature = draws.uniform(-1.0, 1.0)  # light colour: warm (> 0) to cool, never a green cast
    warmth = torch.tensor([1.0 + 0.05 * temperature, 1.0, 1.0 - 0.07 * temperature])[:, None, None]
    image = (painter.image * warmth * draws.uniform(0.85, 1.12)).clamp(0.0, 1.0)

    to_pixel = head.to_pixel
    cheeks = [(*to_pixel(head.side_x(side, 0.45), 0.18 * ry), 0.22 * rx * size / 2.0) for side in (-1.0, 1.0)]
    return Portrait(image, painter.skin.clamp(0.0, 1.0), [to_pixel(*eye) for eye in eyes], cheeks, rx * size / 2.0)
