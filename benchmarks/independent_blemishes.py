"""Blemishes drawn by code that shares nothing with the training synthesizer, for bench_transfer.py.

``gan_retouch.synth.defects`` draws multiplicative tints with analytic profiles from a fixed list of kinds. This
module draws with OpenCV primitives instead: filled random polygons and ellipses, blurred by a random Gaussian,
alpha-blended (so they cover the skin texture) in colours drawn from an HSV range (reds, browns, purples, a few
yellow-white heads), with NumPy's random generator. It is a stand-in for "another person's blemish synthesizer":
the model never trains on it, and nothing here is imported by the toolkit.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np
import torch

LARGE_SHARE = 0.15  # the share of blemishes that are large (radius 8-25 % of the face); the rest are 1-5 %


def _shape(height: int, width: int, rng: np.random.Generator, centre: tuple[float, float], radius: float) -> np.ndarray:
    """A float32 [H,W] alpha in [0, 1]: a random polygon or ellipse around ``centre``, blurred."""
    canvas = np.zeros((height, width), np.float32)
    cx, cy = centre
    if rng.random() < 0.5:
        corners = rng.integers(5, 10)
        angles = np.sort(rng.uniform(0, 2 * np.pi, corners))
        radii = radius * rng.uniform(0.5, 1.2, corners)
        points = np.stack((cx + radii * np.cos(angles), cy + radii * np.sin(angles)), 1).round().astype(np.int32)
        cv2.fillPoly(canvas, [points], 1.0, lineType=cv2.LINE_AA)
    else:
        axes = (max(1, round(radius)), max(1, round(radius * rng.uniform(0.4, 1.0))))
        cv2.ellipse(canvas, (round(cx), round(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1, cv2.LINE_AA)
    sigma = radius * rng.uniform(0.15, 0.6)
    return cv2.GaussianBlur(canvas, (0, 0), max(sigma, 0.5))


def _colour(skin_rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A blemish colour relative to the skin under it: mostly redder/darker, sometimes a pale head."""
    h, s, v = colorsys.rgb_to_hsv(*skin_rgb.clip(1e-3, 1.0))
    if rng.random() < 0.12:  # a pale, yellowish head
        return np.array(colorsys.hsv_to_rgb(rng.uniform(0.1, 0.16), rng.uniform(0.1, 0.35), min(1.0, v * rng.uniform(1.05, 1.25))))
    hue = rng.choice([rng.uniform(0.94, 1.0), rng.uniform(0.0, 0.06), rng.uniform(0.04, 0.1), rng.uniform(0.88, 0.94)])
    saturation = min(1.0, s + rng.uniform(0.1, 0.45))
    return np.array(colorsys.hsv_to_rgb(hue % 1.0, saturation, v * rng.uniform(0.55, 0.95)))


def independent_pair(clean: torch.Tensor, skin: torch.Tensor, seed: int, count: tuple[int, int] = (6, 24),
                     large_share: float = LARGE_SHARE) -> dict[str, torch.Tensor]:
    """``clean`` [3,H,W] with independent blemishes on ``skin`` [1,H,W] > 0.9: input, target (= clean) and mask.

    ``large_share`` in [0, 1] is the chance that a blemish is large (0 = small spots only, 1 = large only)."""
    if not 0.0 <= large_share <= 1.0:
        raise ValueError(f"large_share must be in [0, 1], got {large_share}")
    rng = np.random.default_rng(seed)
    image = clean.permute(1, 2, 0).numpy().astype(np.float32).copy()
    skin_map = skin[0].numpy()
    height, width = skin_map.shape
    spots = np.argwhere(skin_map > 0.9)
    if len(spots) == 0:
        raise ValueError("no skin to draw blemishes on")
    side = min(height, width)
    face = float(np.sqrt(len(spots)))  # the skin's extent in pixels: blemishes scale with the face, not the frame
    for _ in range(rng.integers(count[0], count[1] + 1)):
        y, x = spots[rng.integers(len(spots))]
        radius = max(1.0, face * (rng.uniform(0.08, 0.25) if rng.random() < large_share else rng.uniform(0.01, 0.05)))
        radius = min(radius, side / 6)
        alpha = _shape(height, width, rng, (float(x), float(y)), radius) * rng.uniform(0.25, 0.85) * skin_map
        colour = _colour(image[int(y), int(x)], rng).astype(np.float32)
        image = image + (colour[None, None, :] - image) * alpha[..., None]
    blemished = torch.from_numpy(image.clip(0.0, 1.0)).permute(2, 0, 1).contiguous()
    mask = ((blemished - clean).abs().amax(0, keepdim=True) > 0).float()
    return {"input": blemished, "target": clean, "mask": mask}
