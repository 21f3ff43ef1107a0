"""A photo's face decides two things of a run: the working size, and the features the edit must not reach.

**Face width.** A model trained on faces ``face_width`` pixels wide (the plan's ``face_width``) sees acne at the
sizes it learned only when the photo's face is about that wide. So the photo is scaled (down, never up) until its
largest face, found by OpenCV's cascades on a copy at most ``synth.faces.DETECT_SIDE`` px long, is ``face_width`` px wide; the
network runs there, and its edit is brought back to full size (``work_size.at_work_size``). A 1024 px aligned face
and the face of a 6000 px full-body portrait are then retouched at the same scale. When no face is found, the
plan's ``work_size`` applies and the caller says so.

**Protected features.** With the plan's ``protect_features``, the edit is faded out over the eyes with their
brows and the mouth of that face (``synth.faces.features_region``, the regions the face models' training leaves
without defects): an iris, a red caruncle or a lip is never taken for a blemish.
"""

from __future__ import annotations

import torch

from gan_retouch.inference.work_size import MIN_WORK_SIZE
from gan_retouch.synth.faces import Face, features_region, largest_face


def largest_face_width(image: torch.Tensor) -> float | None:
    """The width in pixels of the largest face in ``image``, or None."""
    face = largest_face(image)
    return None if face is None else face.w


def face_work_size(face_width: float, face: Face, shape: tuple[int, int]) -> int | None:
    """The working size (longer side) at which ``face`` is ``face_width`` px wide; None (native) when it already
    is no wider."""
    scale = min(1.0, face_width / face.w)
    return None if scale >= 1.0 else max(MIN_WORK_SIZE, round(max(shape) * scale))


def writable(output: torch.Tensor, image: torch.Tensor) -> bool:
    """Whether a network's ``output`` may be changed in place: not ``image`` itself (a network that handed its input
    back), and not an inference-mode tensor outside inference mode (a backend's output), which torch refuses."""
    inference = torch.is_inference(output) and not torch.is_inference_mode_enabled()
    return output.data_ptr() != image.data_ptr() and not inference


def protect_features(output: torch.Tensor, image: torch.Tensor, face: Face) -> torch.Tensor:
    """``output`` ``[N,3,H,W]`` with its edit of ``image`` faded out over ``face``'s eyes, brows and mouth."""
    keep = features_region([face], *image.shape[-2:]).to(image.device, image.dtype)
    if not writable(output, image):
        output = output.clone()
    step = max(1, (1 << 19) // image.shape[-1])  # in place, in bands of rows: no full-size temporary
    for top in range(0, image.shape[-2], step):
        rows = (..., slice(top, top + step), slice(None))
        output[rows] += (image[rows] - output[rows]) * keep[rows]
    return output
