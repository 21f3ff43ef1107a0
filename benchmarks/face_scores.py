"""Scores of a retouch of a real face that has no target: how much each face part changed, and the spot score.

**Change** of a part (``gan_retouch.synth.regions``: eyes, brows, mouth, hair, skin, outside): the mean over the
part's pixels (weighted by its mask) of the mean over R, G, B of ``|output - input|``, in 8-bit levels (/255).

**Spot score**, on face skin (the ``skin`` mask above 0.5), in CIELAB (OpenCV's float conversion, sRGB D65):

- the *local mean* of a channel is its gaussian average over face skin only (``blur(c * skin) / blur(skin)``,
  sigma ``LOCAL_SIGMA`` of the face width), so that lips, brows and background do not leak in;
- the *redness excess* is ``a* - local mean of a*``;
- *spots* are the 8-connected groups of skin pixels of the **input** whose excess is above ``SPOT_EXCESS`` and
  whose bounding box's longer side is within ``SPOT_SIZE`` of the face width (1024 px aligned face: 2-21 px);
- **contrast removed** = ``1 - sum(max(0, excess of the output)) / sum(max(0, excess of the input))``, both sums
  over the same spot pixels (the output's excess against the output's own local mean). 0 % = every spot as red
  as before, 100 % = no spot redder than the skin around it; negative = the spots got redder;
- **texture kept** = ``std(hp(L* of the output)) / std(hp(L* of the input))`` over the skin pixels away from the
  spots (spots dilated by ``SPOT_MARGIN`` of the face width; skin eroded by as much, off the feature edges), where
  ``hp(L) = L - gaussian(L, sigma = TEXTURE_SIGMA of the face width)``: pores and fine grain. 100 % = all kept,
  below = smoothed ("plastic"), above = sharpened or noisier.

The identity (output = input) scores exactly 0 % removed and 100 % texture kept. Only the face's bounding box
(with a margin) is converted, so a 24 MP portrait costs about as much as its face.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

SPOT_EXCESS = 4.0  # a* above its local skin mean that makes a pixel part of a spot
LOCAL_SIGMA = 0.03  # gaussian sigma of the local skin mean, share of the face width
SPOT_SIZE = (0.003, 0.04)  # a spot's longer side, share of the face width
TEXTURE_SIGMA = 0.005  # gaussian sigma of the high-pass of L*, share of the face width (at least 0.5 px)
SPOT_MARGIN = 0.01  # texture is measured this far (share of the face width) from spots and the skin's edge


@dataclass
class Spots:
    """Spots found on a face: pixel mask, count, each spot's centre (x, y) and total excess, strongest first."""

    mask: np.ndarray
    count: int
    centres: list[tuple[int, int]]


def region_changes(source: torch.Tensor, output: torch.Tensor, masks: dict[str, torch.Tensor]) -> dict[str, float]:
    """Mean ``|output - source|`` (/255) inside each ``[1,H,W]`` mask; NaN for an empty mask."""
    change = (output - source).abs().mean(0, keepdim=True) * 255.0
    result = {}
    for name, mask in masks.items():
        weight = float(mask.sum())
        result[name] = float((change * mask).sum()) / weight if weight > 0 else float("nan")
    return result


def to_lab(image: torch.Tensor) -> np.ndarray:
    """``[3,H,W]`` RGB in [0, 1] -> ``H x W x 3`` float32 CIELAB (L* 0-100, a*, b*)."""
    rgb = np.ascontiguousarray(image.clamp(0.0, 1.0).permute(1, 2, 0).numpy(), dtype=np.float32)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)


def _blur(array: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(array, (0, 0), sigmaX=max(sigma, 0.5), borderType=cv2.BORDER_REFLECT)


def redness_excess(lab: np.ndarray, skin: np.ndarray, face_width: float) -> np.ndarray:
    """a* minus its gaussian mean over face skin (module docstring)."""
    sigma = LOCAL_SIGMA * face_width
    local = _blur(lab[..., 1] * skin, sigma) / np.maximum(_blur(skin, sigma), 1e-6)
    return lab[..., 1] - local


def find_spots(excess: np.ndarray, skin: np.ndarray, face_width: float) -> Spots:
    """The spots of a face from the input's redness excess (module docstring)."""
    candidate = ((excess > SPOT_EXCESS) & (skin > 0.5)).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(candidate, connectivity=8)
    side = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    keep = (side >= SPOT_SIZE[0] * face_width) & (side <= SPOT_SIZE[1] * face_width)
    keep[0] = False  # the background label
    mask = keep[labels]
    strength = np.bincount(labels[mask], weights=np.maximum(excess[mask], 0.0), minlength=count)
    order = [int(i) for i in np.argsort(-strength) if keep[i]]
    centres = [(int(stats[i, cv2.CC_STAT_LEFT] + stats[i, cv2.CC_STAT_WIDTH] // 2),
                int(stats[i, cv2.CC_STAT_TOP] + stats[i, cv2.CC_STAT_HEIGHT] // 2)) for i in order]
    return Spots(mask, len(order), centres)


def face_box(skin: torch.Tensor, margin: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the skin mask's bounding box, ``margin`` px wider, inside the image."""
    rows, cols = torch.nonzero(skin[0] > 0, as_tuple=True)
    height, width = skin.shape[-2:]
    if rows.numel() == 0:
        return 0, 0, 0, 0
    return (max(int(rows.min()) - margin, 0), min(int(rows.max()) + 1 + margin, height),
            max(int(cols.min()) - margin, 0), min(int(cols.max()) + 1 + margin, width))


def spot_score(source: torch.Tensor, output: torch.Tensor, skin: torch.Tensor, face_width: float) -> dict:
    """``removed`` and ``texture_kept`` (fractions; NaN when there is nothing to measure), the number of
    ``spots`` and their ``centres`` in image pixels, strongest first (module docstring)."""
    top, bottom, left, right = face_box(skin, int(3 * LOCAL_SIGMA * face_width) + 1)
    crop = (slice(None), slice(top, bottom), slice(left, right))
    skin_np = np.ascontiguousarray(skin[crop][0].numpy(), dtype=np.float32)
    lab_in, lab_out = to_lab(source[crop]), to_lab(output[crop])
    excess_in = redness_excess(lab_in, skin_np, face_width)
    spots = find_spots(excess_in, skin_np, face_width)
    before = float(np.maximum(excess_in[spots.mask], 0.0).sum())
    after = float(np.maximum(redness_excess(lab_out, skin_np, face_width)[spots.mask], 0.0).sum())
    removed = 1.0 - after / before if before > 0 else float("nan")
    radius = max(int(round(SPOT_MARGIN * face_width)), 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    near_spots = cv2.dilate(spots.mask.astype(np.uint8), kernel) > 0
    inner_skin = cv2.erode((skin_np > 0.5).astype(np.uint8), kernel) > 0
    away = inner_skin & ~near_spots
    sigma = TEXTURE_SIGMA * face_width
    texture = [float((lab[..., 0] - _blur(lab[..., 0], sigma))[away].std()) if away.any() else float("nan")
               for lab in (lab_in, lab_out)]
    kept = texture[1] / texture[0] if texture[0] > 0 else float("nan")
    centres = [(x + left, y + top) for x, y in spots.centres]
    return {"removed": removed, "texture_kept": kept, "spots": spots.count, "centres": centres}
