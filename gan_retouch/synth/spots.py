"""Red spots on real face skin: found in CIELAB, and toned down the way a retoucher evens them.

Real photos of faces are not spotless. A model trained to map "photo + rendered blemishes" back to "photo" learns
to keep the spots the photo already has. So the target of a real-photo pair is the photo with its own red spots
toned down: where the redness (CIELAB a*) of a small patch of skin rises above that of the skin around it (a
Gaussian over ``LOCAL_SIGMA`` of the face width), the excess is removed (and the lightness it lost restored, up to
what the redness explains, so brown freckles keep their tone), while the fine texture of lightness stays.

The target must be a function a network can learn: a spot healed in one photo and a look-alike left in another
teach it to leave both (the L1 optimum is the median). So the healing is graded, not all-or-nothing:

- a *spot* is a connected patch of face skin whose a* excess is above one of ``LEVELS`` (a cluster that merges
  into one large patch at a low level splits into papules at a higher one) and that looks like acne: its longer
  side within ``SPOT_SIDE`` of the face width, and compact unless it is small (``COMPACTNESS``: a nose's shading
  edge or a strand of hair is long and thin; lips and flushed cheeks are larger);
- inside a spot and its halo the excess is removed in proportion to its strength: nothing below ``EXCESS[0]``,
  all of it from ``EXCESS[1]`` up (smoothly in between);
- only whole spots ``INTERIOR`` of the face width inside the skin mask are toned down: not the fragments of a
  lip, a finger or a red light at the skin's edge.
"""

from __future__ import annotations

import math

import numpy as np
import torch

LOCAL_SIGMA = 0.03  # Gaussian sigma of the local skin colour, as a fraction of the face width
EXCESS = (2.0, 5.0)  # a* above the local mean (CIELAB units): none of it removed below, all of it above
LEVELS = (2.0, 3.0, 4.5, 6.5)  # a* excess levels at which spots are looked for
SPOT_SIDE = (0.003, 0.05)  # longer side of a spot's bounding box, as fractions of the face width
COMPACTNESS = (0.2, 0.015)  # area / (pi/4 side^2) a spot needs ... unless its side is below this face width share
INTERIOR = 0.004  # a spot toned down lies this far (fraction of the face width, at least 1 px) inside the skin mask
RED_DOMINANCE = 0.5  # the lightness a spot lost comes back up to its a* excess / this (a freckle keeps its tone)
HALO = 0.004  # how far around a spot (face width share) its healing fades out


def to_lab(image: torch.Tensor) -> np.ndarray:
    """``[3,H,W]`` RGB in [0, 1] -> ``[H,W,3]`` float32 CIELAB (L in [0, 100], a and b around 0)."""
    import cv2

    rgb = np.ascontiguousarray(image.permute(1, 2, 0).numpy(), dtype=np.float32)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)


def from_lab(lab: np.ndarray) -> torch.Tensor:
    """The inverse of ``to_lab``, clamped to [0, 1]."""
    import cv2

    rgb = cv2.cvtColor(np.ascontiguousarray(lab, dtype=np.float32), cv2.COLOR_Lab2RGB)
    return torch.from_numpy(rgb).permute(2, 0, 1).clamp(0.0, 1.0).contiguous()


def _blur(channel: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(channel, (0, 0), sigmaX=max(sigma, 0.5), borderType=cv2.BORDER_REFLECT)


def local_excess(lab: np.ndarray, skin: np.ndarray, face_width: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(excess_a, deficit_l, excess_b)``: a* above its local mean, L* below it and b* above it, each mean taken
    over face skin only (``skin`` [H,W])."""
    sigma = LOCAL_SIGMA * face_width
    weight = _blur(skin, sigma) + 1e-6

    def local_mean(channel: int) -> np.ndarray:
        return _blur(lab[..., channel] * skin, sigma) / weight

    return lab[..., 1] - local_mean(1), local_mean(0) - lab[..., 0], lab[..., 2] - local_mean(2)


def spots_at_levels(excess_a: np.ndarray, skin: np.ndarray, face_width: float) -> np.ndarray:
    """Boolean ``[H,W]``: the skin pixels in a spot at any of ``LEVELS`` (module docstring)."""
    import cv2

    found = np.zeros(excess_a.shape, dtype=bool)
    for level in LEVELS:
        candidates = ((excess_a > level) & (skin > 0.5)).astype(np.uint8)
        _, labels, stats, _ = cv2.connectedComponentsWithStats(candidates, connectivity=8)
        side = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]).astype(np.float64)
        compact = stats[:, cv2.CC_STAT_AREA] / (math.pi / 4 * side**2)
        keep = (side >= max(SPOT_SIDE[0] * face_width, 1.5)) & (side <= SPOT_SIDE[1] * face_width)
        keep &= (compact >= COMPACTNESS[0]) | (side <= COMPACTNESS[1] * face_width)
        keep[0] = False  # the background label
        found |= keep[labels]
    return found


def inside(spots: np.ndarray, skin: np.ndarray, face_width: float) -> np.ndarray:
    """The whole ``spots`` (connected groups) that lie at least ``INTERIOR`` of the face width inside the skin."""
    import cv2

    depth = max(1, round(INTERIOR * face_width))
    interior = cv2.erode((skin > 0.5).astype(np.uint8),
                         cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * depth + 1,) * 2)) > 0
    _, labels = cv2.connectedComponents(spots.astype(np.uint8), connectivity=8)
    at_edge = np.unique(labels[spots & ~interior])
    return spots & ~np.isin(labels, at_edge)


def found_spots(excess_a: np.ndarray, skin: np.ndarray, face_width: float) -> np.ndarray:
    """Boolean ``[H,W]``: the spots the healing tones down, their halos left out (module docstring)."""
    return inside(spots_at_levels(excess_a, skin, face_width), skin, face_width)


def halo_reach(face_width: float) -> int:
    """``HALO`` of the face width in pixels, at least 1."""
    return max(1, round(HALO * face_width))


def heal_weight(excess_a: np.ndarray, skin: np.ndarray, face_width: float) -> np.ndarray:
    """``[H,W]`` in [0, 1]: how much of each pixel's a* excess the healing removes (module docstring)."""
    import cv2

    reach = halo_reach(face_width)
    halo = cv2.dilate(found_spots(excess_a, skin, face_width).astype(np.uint8),
                      cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2))
    near_spot = np.clip(_blur(halo.astype(np.float32), reach / 2) * 1.5, 0.0, 1.0)
    ramp = np.clip((excess_a - EXCESS[0]) / (EXCESS[1] - EXCESS[0]), 0.0, 1.0)
    strength = ramp * ramp * (3.0 - 2.0 * ramp)
    strength = np.clip(np.maximum(strength, _blur(strength, reach / 2) * 1.5), 0.0, 1.0)  # the soft edge of a spot
    return strength * near_spot * skin


def red_spots(lab: np.ndarray, skin: np.ndarray, face_width: float) -> tuple[np.ndarray, np.ndarray]:
    """``(spots, excess_a)``: a boolean ``[H,W]`` mask of the spots the healing tones down (module docstring; their
    halos left out) on ``skin`` (> 0.5), and the a* excess map."""
    excess_a, _, _ = local_excess(lab, skin, face_width)
    return found_spots(excess_a, skin, face_width), excess_a


def tone_down_spots(image: torch.Tensor, skin: torch.Tensor, face_width: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cleaned, weight)``: ``image`` [3,H,W] with the red spots on ``skin`` [1,H,W] toned down, and the ``[1,H,W]``
    share of each pixel's redness removed. The colour (a*, b*) goes towards the local skin's and the lightness
    the redness took comes back: the spot heals, the fine texture of lightness stays."""
    lab = to_lab(image)
    skin_np = skin[0].numpy().astype(np.float32)
    excess_a, deficit_l, excess_b = local_excess(lab, skin_np, face_width)  # once, for the spots and the healing
    weight = heal_weight(excess_a, skin_np, face_width)
    if not (weight > 0).any():
        return image, torch.zeros_like(skin)
    reach = halo_reach(face_width)
    redness = np.clip(_blur(excess_a, reach), 0.0, None)
    lift = np.minimum(np.clip(_blur(deficit_l, reach), 0.0, None), redness / RED_DOMINANCE)  # not a freckle's tone
    cleaned = lab.copy()
    cleaned[..., 0] += lift * weight
    cleaned[..., 1] -= np.clip(excess_a, 0.0, None) * weight
    cleaned[..., 2] -= _blur(excess_b, reach) * weight
    change = (from_lab(cleaned) - from_lab(lab)) * torch.from_numpy(weight > 0)[None]  # exact elsewhere
    return (image + change).clamp(0.0, 1.0), torch.from_numpy(weight)[None]
