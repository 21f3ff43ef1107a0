"""Face features of the synthetic portraits: eyes with lashes, catchlights and pink inner corners, brows, nose,
lips, teeth and gums, stubble and glasses. None of them is skin, so defects never land on them; they stay identical
in input and target. Their colours vary like real ones (off-white to pinkish eye whites, white to yellow teeth)
because on real photos these are what a model mistakes for pale or red blemishes if it never saw them kept.
"""

from __future__ import annotations

import math

import torch

from gan_retouch.synth.noise import Draws, smooth_noise
from gan_retouch.synth.paint import Head, Painter, colour, ellipse

IRIS_COLOURS = ((70, 45, 25), (40, 28, 20), (95, 80, 45), (70, 100, 130), (80, 110, 80), (110, 110, 120))
LIP_TINTS = ((0.85, 0.52, 0.55), (0.8, 0.55, 0.5), (0.75, 0.45, 0.5), (0.9, 0.6, 0.6), (0.7, 0.35, 0.4))
FRAME_COLOURS = ((20, 20, 20), (90, 60, 40), (160, 150, 140), (120, 30, 40), (30, 40, 90))


def draw_eyes(painter: Painter, head: Head, draws: Draws, strands: torch.Tensor) -> list[tuple[float, float]]:
    """Both eyes and brows (each drawn in its own pixel window); returns the eye centres (head-local x, y)."""
    eye_y, eye_x = -head.ry * draws.uniform(0.02, 0.12), draws.uniform(0.34, 0.44)
    eye_w = head.rx * draws.uniform(0.16, 0.22)
    eye_h = eye_w * draws.uniform(0.3, 0.5)
    look = {
        "iris": colour(draws.pick(IRIS_COLOURS)) * draws.uniform(0.75, 1.1),
        "gaze": draws.uniform(-0.25, 0.25) * eye_w, "glint": (draws.uniform(-0.5, 0.5), draws.uniform(-0.5, -0.1)),
        "brow_lift": eye_h * draws.uniform(1.9, 3.0), "brow_thick": eye_h * draws.uniform(0.3, 0.75),
        "brow_colour": head.hair * draws.uniform(0.6, 1.1), "brow_w": draws.uniform(1.15, 1.4),
        "lash": eye_h * draws.uniform(0.15, 0.45), "eye_h": eye_h, "eye_y": eye_y,
        "sclera": colour((draws.uniform(215, 245), draws.uniform(195, 232), draws.uniform(185, 228))),
        "caruncle": colour((draws.uniform(190, 235), draws.uniform(100, 150), draws.uniform(100, 145))),
    }
    centres = []
    for side in (-1.0, 1.0):
        width = eye_w * head.side_scale(side)
        centre = head.side_x(side, eye_x)
        centres.append((centre, eye_y))
        reach = width * look["brow_w"] * 1.2
        box = head.box(centre - reach, centre + reach, eye_y - look["brow_lift"] - look["brow_thick"] - eye_h,
                       eye_y + 1.5 * eye_h)
        if box is not None:
            view = painter.window(*box)
            _eye(view, head.crop(*box), strands[:, box[0], box[1]], side, centre, width, look)
            painter.put_back(view, *box)
    return centres


def _eye(painter: Painter, head: Head, strands: torch.Tensor, side: float, centre: float, width: float,
         look: dict) -> None:
    eye_h, eye_y, gaze, glint = look["eye_h"], look["eye_y"], look["gaze"], look["glint"]
    ex, ey = head.X - centre, head.Y - eye_y
    lid = eye_h * (1.0 - (ex / width).square()).clamp_min(0.0)
    eye_cover = painter.coverage(torch.minimum(lid - ey.abs(), width - ex.abs()))
    painter.paint(look["sclera"] * head.shade, eye_cover)
    inner = ellipse(ex, ey, -side * 0.85 * width, 0.0, 0.2 * width, 0.7 * eye_h)  # the pink inner corner
    painter.paint(look["caruncle"] * head.shade, painter.coverage(inner) * eye_cover)
    painter.paint(look["iris"], painter.coverage(ellipse(ex, ey, gaze, 0.0, eye_h * 0.95, eye_h * 0.95)) * eye_cover)
    painter.paint(torch.full((3, 1, 1), 0.04), painter.coverage(ellipse(ex, ey, gaze, 0.0, eye_h * 0.4, eye_h * 0.4)) * eye_cover)
    catch = ellipse(ex, ey, gaze + glint[0] * eye_h, glint[1] * eye_h, eye_h * 0.16, eye_h * 0.16)
    painter.paint(torch.full((3, 1, 1), 0.97), painter.coverage(catch) * eye_cover)
    # upper lash line with lashes: a dark rim whose outer edge is broken up by the strand texture
    above = -(ey + lid)  # > 0 above the upper lid line
    rim = 0.1 * eye_h - above.abs()
    lashes = torch.minimum(above + 0.05 * eye_h, look["lash"] * ((strands - 0.45) * 3.0).clamp(0.0, 1.0) - above)
    lash = torch.minimum(torch.maximum(rim, lashes), width * 1.08 - ex.abs())
    painter.paint(head.hair * 0.35, painter.coverage(lash) * 0.9)
    painter.shade(0.93, painter.coverage(torch.minimum(0.06 * eye_h - (ey - lid).abs(), width - ex.abs())))
    bx, by = head.X - centre - side * 0.03 * head.rx, ey + look["brow_lift"]
    brow_w = width * look["brow_w"]
    arch = -0.35 * eye_h * (1.0 - (bx / brow_w).square()) + side * 0.15 * eye_h * bx / brow_w
    brow_half = look["brow_thick"] * (1.0 - 0.55 * ((bx / brow_w) * side + 1.0) / 2.0)
    brow = torch.minimum(brow_half / 2 - (by - arch).abs(), brow_w - bx.abs())
    painter.paint(look["brow_colour"], painter.coverage(brow, 2.0) * (0.55 + 0.45 * strands))


def draw_nose_and_mouth(painter: Painter, head: Head, draws: Draws, light_x: float) -> float:
    """Nose shading, nostrils, lips (mouth open with teeth on some faces); returns the lip height (head-local)."""
    rx, ry = head.rx, head.ry
    shape = {
        "nose_y": ry * draws.uniform(0.2, 0.3), "lip_y": ry * draws.uniform(0.48, 0.58),
        "lip_w": rx * draws.uniform(0.24, 0.34), "tint": torch.tensor(draws.pick(LIP_TINTS))[:, None, None],
        "dark": draws.uniform(0.8, 1.1), "upper": ry * draws.uniform(0.035, 0.07),
        "lower": ry * draws.uniform(0.05, 0.09), "gap": ry * draws.uniform(0.01, 0.05) if draws.chance(0.5) else 0.0,
        "teeth": colour((draws.uniform(215, 245), draws.uniform(200, 235), draws.uniform(150, 215))),
        "gums": draws.uniform(0.0, 0.35), "light_x": light_x,
    }
    mid = head.side_x(1.0, 0.0)
    box = head.box(mid - 0.5 * rx, mid + 0.5 * rx, -0.15 * ry, shape["lip_y"] + 0.16 * ry)
    if box is not None:
        view = painter.window(*box)
        _nose_and_mouth(view, head.crop(*box), mid, shape)
        painter.put_back(view, *box)
    return shape["lip_y"]


def _nose_and_mouth(painter: Painter, head: Head, mid: float, shape: dict) -> None:
    X, Y, rx, ry = head.X, head.Y, head.rx, head.ry
    nose_y, lip_y, lip_w, gap = shape["nose_y"], shape["lip_y"], shape["lip_w"], shape["gap"]
    bridge_side = 0.07 * rx * (1 if shape["light_x"] < 0 else -1)
    bridge = torch.exp(-((X - mid - bridge_side) / (0.05 * rx)).square()) * ((Y > -0.1 * ry) & (Y < nose_y)).float()
    painter.shade(0.9, bridge * 0.5 * painter.skin)
    tip = torch.exp(-(((X - mid) / (0.07 * rx)).square() + ((Y - nose_y + 0.03 * ry) / (0.05 * ry)).square()))
    painter.shade(1.1, tip * 0.5 * painter.skin)
    for side in (-1.0, 1.0):
        nostril = ellipse(X, Y, mid + side * 0.075 * rx, nose_y + 0.045 * ry, 0.045 * rx, 0.022 * ry)
        painter.paint(head.skin * 0.35 * head.shade, painter.coverage(nostril))
    lip_colour = head.skin * shape["tint"] * shape["dark"] * head.shade
    lx, offset = X - mid, Y - lip_y
    span = (1.0 - (lx / lip_w).square()).clamp_min(0.0).pow(0.7)
    upper = shape["upper"] * span * (1.0 - 0.3 * torch.exp(-(lx / (0.08 * lip_w)).square()))
    lower = shape["lower"] * span
    if gap == 0.0:
        lips = torch.minimum(torch.minimum(offset + upper, lower - offset), lip_w - lx.abs())
        painter.paint(lip_colour, painter.coverage(lips))
        painter.paint(lip_colour * 0.6, painter.coverage(torch.minimum(0.004 - offset.abs(), 0.9 * lip_w - lx.abs())))
        return
    gap = gap * span
    mouth = torch.minimum(torch.minimum(offset + upper + gap, lower + gap - offset), lip_w - lx.abs())
    painter.paint(lip_colour, painter.coverage(mouth))
    opening = torch.minimum(gap - offset.abs(), 0.92 * lip_w - lx.abs())
    painter.paint(torch.full((3, 1, 1), 0.08), painter.coverage(opening))
    teeth = torch.minimum(opening, (offset + gap) * 0.8 - 0.2 * gap)
    gaps = 1.0 - 0.12 * (torch.cos(lx / (0.11 * lip_w) * math.pi).abs() < 0.12).float()
    painter.paint(shape["teeth"] * head.shade * gaps, painter.coverage(teeth))
    gums = torch.minimum(teeth, shape["gums"] * gap - (offset + gap))  # a pink band above the teeth in wide smiles
    painter.paint(colour((200, 95, 105)) * head.shade, painter.coverage(gums))


def draw_stubble(painter: Painter, head: Head, draws: Draws, lip_y: float, size: int) -> None:
    """Short beard hair on the jaw and upper lip: dark dots that are not skin (defects avoid them)."""
    X, Y = head.X - head.side_x(1.0, 0.0), head.Y
    grid = min(size, 256)
    dots = ((smooth_noise(draws.generator, (grid, grid), (size, size))[0:1] - 1.0) * 0.8).clamp(0.0, 1.0)
    region = ((Y - (lip_y - 0.12 * head.ry)) / (0.08 * head.ry)).clamp(0.0, 1.0)
    region = region * (1.0 - ((X.abs() - 0.9 * head.rx) / (0.1 * head.rx)).clamp(0.0, 1.0))
    density = dots * region * draws.uniform(0.35, 0.8) * painter.skin
    painter.paint(head.hair * 0.6 * head.shade, density.clamp(0.0, 1.0), skin=0.0)


def draw_glasses(painter: Painter, head: Head, draws: Draws, eyes: list[tuple[float, float]]) -> None:
    """Frames with a bridge, lenses that tint and reflect a little; nothing under them counts as skin."""
    X, Y = head.X, head.Y
    frame = colour(draws.pick(FRAME_COLOURS))
    thick = head.rx * draws.uniform(0.015, 0.045)
    lens_w, lens_h = head.rx * draws.uniform(0.26, 0.34), head.ry * draws.uniform(0.1, 0.16)
    tint = torch.tensor([draws.uniform(0.9, 1.0) for _ in range(3)])[:, None, None]
    for side, (ex, ey) in zip((-1.0, 1.0), eyes, strict=True):
        width = lens_w * head.side_scale(side)
        shape = ellipse(X, Y, ex, ey + 0.01 * head.ry, width, lens_h)
        lens = painter.coverage(shape)
        painter.paint(painter.image * tint, lens, skin=0.0)
        glare = torch.exp(-(((X - ex + 0.3 * width) / (0.25 * width)).square() + ((Y - ey + 0.4 * lens_h) / (0.2 * lens_h)).square()))
        painter.paint(torch.full((3, 1, 1), 0.95), glare * lens * draws.uniform(0.1, 0.35), skin=None)
        painter.paint(frame, painter.coverage(thick - shape.abs()), skin=0.0)
    bridge_y = (eyes[0][1] + eyes[1][1]) / 2
    bridge = torch.minimum(thick - (Y - bridge_y + 0.02 * head.ry).abs(), (eyes[1][0] - eyes[0][0]) / 2 - (X - (eyes[0][0] + eyes[1][0]) / 2).abs())
    painter.paint(frame, painter.coverage(bridge), skin=0.0)
