"""The scale a pair of your own trains at: ``data.max_side`` and ``inference.face_width``.

A model meets a photo at its plan's scale, so it must train at that same scale. ``data.max_side`` scales a pair
down until its longer side fits (the plan's ``work_size`` follows it); a training run's ``inference.face_width``
(saved in the plan: at inference each photo is scaled so that its largest face is that wide) scales it down,
never up, until its largest face, found as inference finds it, is that many px wide; a pair without a face
follows ``data.max_side``, as a photo without a face follows the plan's ``work_size``.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from gan_retouch.data.augment import AugmentOptions, side_scale
from gan_retouch.synth.faces import largest_face


def training_scale(image: torch.Tensor, max_side: int | None, face_width: int | None) -> float:
    """The factor (at most 1) that brings ``image`` ``[3,H,W]`` (float) to the training scale."""
    face = largest_face(image) if face_width else None
    return side_scale(*image.shape[-2:], max_side) if face is None else min(1.0, face_width / face.w)


def at_scale(options: AugmentOptions, shape: tuple[int, int], scale: float) -> AugmentOptions:
    """``options`` that bring an image (or a region) of ``shape`` to ``scale`` before the crop: ``max_side`` as the
    longer side it comes to."""
    return replace(options, max_side=None if scale == 1.0 else max(1, round(max(shape) * scale)))
