"""The working size of a photo from its face: a blemish is seen at the size the network learned it.

A model trained on faces ``face_width`` pixels wide (the plan's ``face_width``) sees acne at the sizes it
learned only when the photo's face is about that wide. So the photo is scaled (down, never up) until its largest
face, found by OpenCV's cascades on a copy at most ``DETECT_SIDE`` px long, is ``face_width`` px wide; the
network runs there, and its edit is brought back to full size (``work_size.at_work_size``). A 1024 px aligned face
and the face of a 6000 px full-body portrait are then retouched at the same scale. When no face is found, the
plan's ``work_size`` applies and the caller says so.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gan_retouch.inference.work_size import MIN_WORK_SIZE
from gan_retouch.synth.faces import find_faces

DETECT_SIDE = 1024  # faces are found on a copy whose longer side is at most this


def largest_face_width(image: torch.Tensor) -> float | None:
    """The width in pixels of the largest face in ``image`` ``[3,H,W]`` (float in [0, 1]), or None."""
    height, width = image.shape[-2:]
    scale = min(1.0, DETECT_SIDE / max(height, width))
    small = image.detach().float().cpu()
    if scale < 1.0:
        shape = (max(1, round(height * scale)), max(1, round(width * scale)))
        small = F.interpolate(small[None], size=shape, mode="bilinear", align_corners=False, antialias=True)[0]
    faces = find_faces(small.clamp(0.0, 1.0))
    return faces[0].w / scale if faces else None


def face_work_size(face_width: float, image: torch.Tensor, fallback: int | None) -> tuple[int | None, float | None]:
    """``(work size, face width found)`` for ``image``: its longer side scaled so the largest face is
    ``face_width`` px wide (native when the face is already smaller), or ``(fallback, None)`` without a face."""
    found = largest_face_width(image)
    if found is None:
        return fallback, None
    longer = max(image.shape[-2:])
    scale = min(1.0, face_width / found)
    return (None if scale >= 1.0 else max(MIN_WORK_SIZE, round(longer * scale))), found
