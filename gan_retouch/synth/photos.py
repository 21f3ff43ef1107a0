"""Synthetic defects on real photos: on skin (a colour rule) inside the faces OpenCV finds, never on background."""

from __future__ import annotations

from typing import Any

import torch

from gan_retouch.errors import DataError
from gan_retouch.synth.faces import Face, face_region, find_faces
from gan_retouch.synth.family import SynthOptions
from gan_retouch.synth.noise import Draws, single_thread
from gan_retouch.synth.skin import detect_skin
from gan_retouch.synth.synthetic import blemish, calibrate_subtle


def face_skin(
    photo: torch.Tensor, faces: list[Face] | None = None, name: str = "the photo"
) -> tuple[list[Face], torch.Tensor]:
    """The faces in a ``[3,H,W]`` photo and its ``[1,H,W]`` skin mask bounded by them (where defects may go).

    ``faces`` skips the detection when the caller already ran it; no face is a DataError naming ``name``.
    """
    faces = find_faces(photo) if faces is None else faces
    if not faces:
        raise DataError(f"no face found in {name}: defects go on face skin only, so it needs an upright face of at "
                        f"least 8 % of the shorter side (crop or rotate it)")
    with single_thread():
        return faces, detect_skin(photo) * face_region(faces, *photo.shape[-2:])


def blemish_photo(
    photo: torch.Tensor, family: dict[str, Any] | SynthOptions, seed_parts: tuple, faces: list[Face] | None = None,
    name: str = "the photo",
) -> dict[str, torch.Tensor]:
    """A pair from a clean ``[3,H,W]`` photo: ``input`` (with the family's defects), ``target`` (the photo),
    ``mask`` (exactly where they differ) and ``skin`` (the face-bounded skin the defects were drawn on).

    Deterministic per ``seed_parts``; ``faces`` skips the detection when the caller already ran it. A photo
    without a detectable face is a DataError naming ``name``. ``clean_fraction`` and ``camera`` do not apply.
    """
    options = family if isinstance(family, SynthOptions) else SynthOptions.from_mapping(family)
    faces, skin = face_skin(photo, faces, name)
    with single_thread():
        draws = Draws(*seed_parts, "photo")
        blemished = blemish(photo, skin, faces[0].eyes, faces[0].w / 2, options, draws)
        if options.mode == "subtle":
            blemished = calibrate_subtle(blemished, photo, draws)
    mask = ((blemished - photo).abs().amax(0, keepdim=True) > 0).to(torch.float32)
    return {"input": blemished, "target": photo, "mask": mask, "skin": skin}
