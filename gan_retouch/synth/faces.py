"""Finding faces in users' photos (OpenCV's Haar cascades), so `synth --clean` puts defects on face skin only.

The colour rule of ``skin.detect_skin`` also accepts skin-coloured walls, wood and sand; the face ellipses bound
it. OpenCV 5 dropped the Haar cascades: the 4.x line (``opencv-python-headless<5``) ships them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gan_retouch.errors import DataError

CASCADES = ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml", "haarcascade_profileface.xml")
MIN_FACE_FRACTION = 0.08  # faces smaller than this share of the shorter side are ignored (noise, not portraits)


@dataclass(frozen=True)
class Face:
    """A face box in pixels: left, top, width, height."""

    x: float
    y: float
    w: float
    h: float

    @property
    def eyes(self) -> list[tuple[float, float]]:
        """Approximate eye centres (pixels) of an upright face box."""
        return [(self.x + 0.3 * self.w, self.y + 0.4 * self.h), (self.x + 0.7 * self.w, self.y + 0.4 * self.h)]


def _detectors() -> list:
    try:
        import cv2
    except ImportError as exc:
        raise DataError("synth --clean needs OpenCV's face detector: pip install 'opencv-python-headless<5'") from exc
    if not hasattr(cv2, "CascadeClassifier"):
        raise DataError(f"OpenCV {cv2.__version__} has no Haar face detector (removed in OpenCV 5): "
                        f"pip install 'opencv-python-headless<5'")
    return [cv2.CascadeClassifier(cv2.data.haarcascades + name) for name in CASCADES]


def find_faces(image: torch.Tensor) -> list[Face]:
    """Faces in a ``[3,H,W]`` RGB image in [0, 1], largest first; the first cascade that finds any wins."""
    gray = (image.mean(0) * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()
    smallest = max(int(min(gray.shape) * MIN_FACE_FRACTION), 20)
    for detector in _detectors():
        boxes = detector.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=4, minSize=(smallest, smallest))
        if len(boxes):
            faces = [Face(*(float(v) for v in box)) for box in boxes]
            return sorted(faces, key=lambda face: -face.w * face.h)
    return []


FEATURE_BOXES = (  # (centre x, centre y, half width, half height) as fractions of an upright Haar face box
    (0.30, 0.36, 0.18, 0.14), (0.70, 0.36, 0.18, 0.14),  # eyes with brows, lids and lashes
    (0.50, 0.78, 0.24, 0.13),  # lips and teeth
)


def features_region(faces: list[Face], height: int, width: int) -> torch.Tensor:
    """A ``[1,H,W]`` mask of the eyes (with brows) and mouth of each face box: where no defect is drawn and no
    spot is toned down, since their colours (a red caruncle, red lips) are not blemishes."""
    ys = torch.arange(height, dtype=torch.float32)[:, None] + 0.5
    xs = torch.arange(width, dtype=torch.float32)[None, :] + 0.5
    region = torch.zeros(height, width)
    for face in faces:
        for fx, fy, rx, ry in FEATURE_BOXES:
            cx, cy = face.x + fx * face.w, face.y + fy * face.h
            radial = torch.sqrt(((xs - cx) / (rx * face.w)).square() + ((ys - cy) / (ry * face.h)).square())
            region = torch.maximum(region, ((1.2 - radial) / 0.2).clamp(0.0, 1.0))
    return region[None]


DETECT_SIDE = 1024  # largest_face looks on a copy whose longer side is at most this (fast on 24-megapixel photos)


def largest_face(image: torch.Tensor, detect_side: int = DETECT_SIDE) -> Face | None:
    """The largest face of ``image`` ``[3,H,W]`` (float in [0, 1]) in its own pixels, or None; found on a copy
    whose longer side is at most ``detect_side``."""
    import torch.nn.functional as F

    height, width = image.shape[-2:]
    scale = min(1.0, detect_side / max(height, width))
    small = image.detach().float().cpu()
    if scale < 1.0:
        shape = (max(1, round(height * scale)), max(1, round(width * scale)))
        small = F.interpolate(small[None], size=shape, mode="bilinear", align_corners=False, antialias=True)[0]
    faces = find_faces(small.clamp(0.0, 1.0))
    if not faces:
        return None
    face = faces[0]
    return Face(face.x / scale, face.y / scale, face.w / scale, face.h / scale)


def face_region(faces: list[Face], height: int, width: int) -> torch.Tensor:
    """A soft ``[1,H,W]`` mask of ellipses around the faces (forehead to chin, cheek to cheek)."""
    ys = torch.arange(height, dtype=torch.float32)[:, None] + 0.5
    xs = torch.arange(width, dtype=torch.float32)[None, :] + 0.5
    region = torch.zeros(height, width)
    for face in faces:
        cx, cy = face.x + face.w / 2, face.y + face.h * 0.5
        radial = torch.sqrt(((xs - cx) / (0.56 * face.w)).square() + ((ys - cy) / (0.75 * face.h)).square())
        region = torch.maximum(region, ((1.0 - radial) / 0.08).clamp(0.0, 1.0))
    return region[None]
