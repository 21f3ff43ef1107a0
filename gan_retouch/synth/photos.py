"""Synthetic defects on real photos: on skin (a colour rule) inside the faces OpenCV finds, never on background.

Defects are sized relative to the face (``REFERENCE_PER_FACE`` face widths is the length their sizes are fractions
of), and the target is the photo with its own red spots toned down (``spots.tone_down_spots``): a real photo is
not spotless, and a pair whose target kept its spots would teach a model to keep them.
"""

from __future__ import annotations

from typing import Any

import torch

from gan_retouch.errors import DataError
from gan_retouch.synth.faces import Face, face_region, features_region, find_faces
from gan_retouch.synth.family import SynthOptions
from gan_retouch.synth.noise import Draws, single_thread
from gan_retouch.synth.skin import detect_skin
from gan_retouch.synth.spots import tone_down_spots
from gan_retouch.synth.synthetic import blemish, calibrate_subtle

REFERENCE_PER_FACE = 1.3  # defect sizes are fractions of this many face widths (a procedural portrait's side is ~1.3-2.8)


def face_skin(
    photo: torch.Tensor, faces: list[Face] | None = None, name: str = "the photo"
) -> tuple[list[Face], torch.Tensor]:
    """The faces in a ``[3,H,W]`` photo and its ``[1,H,W]`` skin mask bounded by them, eyes and mouth left out
    (where defects may go).

    ``faces`` skips the detection when the caller already ran it; no face is a DataError naming ``name``.
    """
    faces = find_faces(photo) if faces is None else faces
    if not faces:
        raise DataError(f"no face found in {name}: defects go on face skin only, so it needs an upright face of at "
                        f"least 8 % of the shorter side (crop or rotate it)")
    with single_thread():
        shape = photo.shape[-2:]
        return faces, detect_skin(photo) * face_region(faces, *shape) * (1.0 - features_region(faces, *shape))


def blemish_photo(
    photo: torch.Tensor, family: dict[str, Any] | SynthOptions, seed_parts: tuple, faces: list[Face] | None = None,
    name: str = "the photo", tone_down: bool = True,
) -> dict[str, torch.Tensor]:
    """A pair from a clean ``[3,H,W]`` photo: ``input`` (with the family's defects), ``target`` (the photo, its own
    red spots toned down unless ``tone_down`` is false),
    ``mask`` (exactly where they differ) and ``skin`` (the face-bounded skin the defects were drawn on).

    Deterministic per ``seed_parts``; ``faces`` skips the detection when the caller already ran it. A photo
    without a detectable face is a DataError naming ``name``. ``clean_fraction`` and ``camera`` do not apply.
    """
    options = family if isinstance(family, SynthOptions) else SynthOptions.from_mapping(family)
    faces, skin = face_skin(photo, faces, name)
    return blemish_face(photo, skin, faces[0], options, Draws(*seed_parts, "photo"), tone_down)


def blemish_face(photo: torch.Tensor, skin: torch.Tensor, face: Face, options: SynthOptions,
                 draws: Draws, tone_down: bool = True) -> dict[str, torch.Tensor]:
    """The pair of ``photo`` with ``face`` (its box in the photo's pixels) and its ``skin`` mask: defects drawn
    relative to the face width on the input, the photo's own red spots toned down in the target (``tone_down``)."""
    with single_thread():
        target = tone_down_spots(photo, skin, face.w)[0] if tone_down else photo
        blemished = blemish(target, skin, face.eyes, face.w / 2, options, draws, REFERENCE_PER_FACE * face.w)
        blemished = blemished + (photo - target)  # the photo's own spots stay in the input
        if options.mode == "subtle":
            blemished = calibrate_subtle(blemished, target, draws)
    blemished = blemished.clamp(0.0, 1.0)
    mask = ((blemished - target).abs().amax(0, keepdim=True) > 0).to(torch.float32)
    return {"input": blemished, "target": target, "mask": mask, "skin": skin}
