"""Red spots on real face skin: found in CIELAB, and toned down the way a retoucher evens them.

Real photos of faces are not spotless. A model trained to map "photo + rendered blemishes" back to "photo" learns
to keep the spots the photo already has. So the target of a real-photo pair is the photo with its own red spots
toned down: where the redness (CIELAB a*) of a small patch of skin rises above that of the skin around it, the
excess is removed (and the lightness it lost restored), while the fine texture of lightness stays as it was.

A spot is a connected patch of face skin whose a* exceeds its local mean (a Gaussian over ``LOCAL_SIGMA`` of the
face width) by more than ``EXCESS``, and by more than ``RED_DOMINANCE`` times the lightness it lost (a red papule,
not a brown freckle, which a retoucher keeps), and whose size lies within ``SPOT_DIAMETER`` of the face width (the sizes of
acne on real faces; lips and flushed cheeks are larger, pores smaller). Only spots inside the skin (``INTERIOR``
of the face width away from its edge) are toned down: the fragments of a lip, a finger or a red light in the hair
at the skin's edge are not. Clustered spots are toned down like lone ones: acne comes in clusters.
"""

from __future__ import annotations

import math

import numpy as np
import torch

LOCAL_SIGMA = 0.03  # Gaussian sigma of the local skin colour, as a fraction of the face width
EXCESS = 4.0  # a* above the local mean (CIELAB units) that counts as a red spot
RED_DOMINANCE = 0.5  # ... and a* excess at least this share of the L* deficit: redder than it is darker
SPOT_DIAMETER = (0.003, 0.04)  # equivalent diameter range of a spot, as fractions of the face width
INTERIOR = 0.01  # a spot toned down lies this far (fraction of the face width) inside the skin mask


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


def _red(excess_a: np.ndarray, deficit_l: np.ndarray, skin: np.ndarray, face_width: float) -> np.ndarray:
    """The red-spot mask of ``red_spots`` from the local excess maps."""
    import cv2

    candidates = ((excess_a > EXCESS) & (excess_a >= RED_DOMINANCE * deficit_l) & (skin > 0.5)).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(candidates, connectivity=8)
    low, high = (math.pi / 4 * (d * face_width) ** 2 for d in SPOT_DIAMETER)
    areas = stats[:, cv2.CC_STAT_AREA]
    keep = (areas >= max(low, 2.0)) & (areas <= high)
    keep[0] = False  # the background label
    return keep[labels]


def _inside(spots: np.ndarray, skin: np.ndarray, face_width: float) -> np.ndarray:
    """The whole ``spots`` that lie at least ``INTERIOR`` of the face width inside the skin."""
    import cv2

    depth = max(1, round(INTERIOR * face_width))
    interior = cv2.erode((skin > 0.5).astype(np.uint8),
                         cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * depth + 1,) * 2)) > 0
    _, labels = cv2.connectedComponents(spots.astype(np.uint8), connectivity=8)
    at_edge = np.unique(labels[spots & ~interior])
    return spots & ~np.isin(labels, at_edge)


def red_spots(lab: np.ndarray, skin: np.ndarray, face_width: float) -> tuple[np.ndarray, np.ndarray]:
    """``(spots, excess_a)``: a boolean ``[H,W]`` mask of red spots on ``skin`` (> 0.5), and the a* excess map."""
    excess_a, deficit_l, _ = local_excess(lab, skin, face_width)
    return _red(excess_a, deficit_l, skin, face_width), excess_a


def inner_spots(lab: np.ndarray, skin: np.ndarray, face_width: float) -> tuple[np.ndarray, np.ndarray]:
    """``red_spots`` inside the skin (see the module docstring): acne, not the fragments of lips, fingers or
    lights at the skin's edge."""
    excess_a, deficit_l, _ = local_excess(lab, skin, face_width)
    return _inside(_red(excess_a, deficit_l, skin, face_width), skin, face_width), excess_a


def tone_down_spots(image: torch.Tensor, skin: torch.Tensor, face_width: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cleaned, spots)``: ``image`` [3,H,W] with the red spots on ``skin`` [1,H,W] toned down, and their
    ``[1,H,W]`` soft mask. Inside each spot's halo the colour (a*, b*) goes to the local skin's and the lightness
    it lost comes back, smoothly: the spot heals, the fine texture of lightness stays."""
    import cv2

    lab = to_lab(image)
    skin_np = skin[0].numpy().astype(np.float32)
    excess_a, deficit_l, excess_b = local_excess(lab, skin_np, face_width)  # once, for the spots and the healing
    spots = _inside(_red(excess_a, deficit_l, skin_np, face_width), skin_np, face_width)
    if not spots.any():
        return image, torch.zeros_like(skin)
    reach = max(1, round(0.004 * face_width))
    halo = cv2.dilate(spots.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2))
    soft = np.clip(_blur(halo.astype(np.float32), reach / 2) * 1.5, 0.0, 1.0) * skin_np
    cleaned = lab.copy()
    cleaned[..., 0] += np.clip(_blur(deficit_l, reach), 0.0, None) * soft  # the spot's darkening, not the pores'
    cleaned[..., 1] -= np.clip(excess_a, 0.0, None) * soft
    cleaned[..., 2] -= _blur(excess_b, reach) * soft
    change = (from_lab(cleaned) - from_lab(lab)) * torch.from_numpy(soft > 0)[None]  # exact elsewhere
    return (image + change).clamp(0.0, 1.0), torch.from_numpy(soft)[None]
