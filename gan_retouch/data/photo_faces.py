"""Training faces cut from real photos (``data.synthetic.photos``), with blemishes rendered on their skin.

The procedural portraits teach what a blemish is on a drawn face; real photos add real eyes, lashes, lips, pores,
hair and lighting, which must come out untouched. Each photo is read once: OpenCV finds its largest face
(``synth.faces.largest_face``), and the
photo is kept (as uint8) scaled so that this face is at most ``face_width[1]`` pixels wide. A training face is a
``size`` x ``size`` window around a random point of the face, scaled so that the face is a drawn width in
``face_width`` (the scale the network learns, whatever the photo's resolution), with the family's defects drawn
relative to the face and the photo's own red spots toned down in the target (``synth.photos.blemish_face``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gan_retouch.data.io import DEFAULT_LIMIT, PixelLimit, is_image_file, read_image
from gan_retouch.errors import ConfigError, DataError
from gan_retouch.synth.faces import Face, face_region, features_region, largest_face
from gan_retouch.synth.family import SynthOptions
from gan_retouch.synth.noise import Draws, single_thread
from gan_retouch.synth.photos import blemish_face
from gan_retouch.synth.skin import detect_skin


@dataclass(frozen=True)
class FacePhoto:
    """One photo, scaled so that its face is at most the largest training face width, and that face's box."""

    name: str
    pixels: torch.Tensor  # uint8 [3,H,W]
    face: Face


def _resize(image: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(image[None], size=shape, mode="bilinear", align_corners=False, antialias=True)[0]


def load_face_photo(path: Path, largest_width: float, limit: PixelLimit = DEFAULT_LIMIT) -> FacePhoto | None:
    """The photo at ``path`` with its largest face, scaled so that face is at most ``largest_width`` px wide; None
    when OpenCV finds no face in it."""
    photo = read_image(path, limit)
    with single_thread():
        face = largest_face(photo)
    if face is None:
        return None
    keep = min(1.0, largest_width / face.w)
    if keep < 1.0:
        height, width = photo.shape[-2:]
        photo = _resize(photo, (max(1, round(height * keep)), max(1, round(width * keep))))
    kept_face = Face(face.x * keep, face.y * keep, face.w * keep, face.h * keep)
    pixels = (photo * 255.0).round().clamp(0, 255).to(torch.uint8)
    return FacePhoto(path.name, pixels, kept_face)


class PhotoFaces:
    """The faces of a folder of clean photos, as training pairs with rendered blemishes (see the module doc)."""

    def __init__(self, folder: str | Path, size: int, face_width: tuple[float, float],
                 limit: PixelLimit = DEFAULT_LIMIT) -> None:
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise ConfigError(f"data.synthetic.photos: {root} is not a folder: name a folder of face photos, or null")
        files = sorted(path for path in root.rglob("*") if is_image_file(path))
        if not files:
            raise DataError(f"data.synthetic.photos: no images (PNG, JPEG, WebP) under {root}")
        self.size = size
        self.face_width = face_width
        self.photos: list[FacePhoto] = []
        faceless = []
        for path in files:
            loaded = load_face_photo(path, face_width[1], limit)
            if loaded is None:
                faceless.append(path.name)
            else:
                self.photos.append(loaded)
        if faceless:
            warnings.warn(f"data.synthetic.photos: no face found in {len(faceless)} of {len(files)} photos under "
                          f"{root} ({', '.join(faceless[:5])}{', ...' if len(faceless) > 5 else ''}); they are not "
                          f"used (crop or rotate them to an upright face)", stacklevel=2)
        if not self.photos:
            raise DataError(f"data.synthetic.photos: no face found in any photo under {root}: it needs upright faces "
                            f"of at least 8 % of each photo's shorter side")

    def pair(self, index: int, seed: int, options: SynthOptions) -> dict[str, Any]:
        """Training face ``index``: a window of one photo at a drawn face width, with rendered blemishes."""
        draws = Draws(seed, "photo_faces", index)
        photo: FacePhoto = draws.pick(self.photos)
        face = photo.face
        scale = min(1.0, draws.uniform(*self.face_width) / face.w)
        height, width = photo.pixels.shape[-2:]
        side = min(round(self.size / scale), height, width)
        cx = face.x + face.w * draws.uniform(0.15, 0.85)
        cy = face.y + face.h * draws.uniform(0.15, 0.95)
        x0 = int(min(max(cx - side / 2, 0), width - side))
        y0 = int(min(max(cy - side / 2, 0), height - side))
        window = photo.pixels[:, y0 : y0 + side, x0 : x0 + side].to(torch.float32) / 255.0
        factor = self.size / side
        window = _resize(window, (self.size, self.size)).clamp(0.0, 1.0) if side != self.size else window
        local = Face((face.x - x0) * factor, (face.y - y0) * factor, face.w * factor, face.h * factor)
        with single_thread():
            skin = (detect_skin(window) * face_region([local], self.size, self.size)
                    * (1.0 - features_region([local], self.size, self.size)))
        item = blemish_face(window, skin, local, options, draws)
        return {**item, "name": f"photo_{Path(photo.name).stem}_{index:06d}"}
