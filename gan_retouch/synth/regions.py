"""The parts of a face in a photo: where a retouch may work (face skin) and where it must change nothing (eyes,
brows, mouth, hair, everything outside the face), as masks for measuring a model on real faces
(``benchmarks/bench_faces.py``) and for inference.

``face_parts(image)`` takes the largest face that ``faces.find_faces`` finds and returns ``[1,H,W]`` float masks
at the photo's full size (None when no face is found: the caller says so):

- ``eyes``: OpenCV's eye cascades inside the upper face box, one box per side, the detection nearest the box's
  geometric eye position (``Face.eyes``); a side with none falls back to a geometric box there. Each box is
  padded by ``EYE_PAD`` of its size on every side, so that lids and lashes are inside.
- ``brows``: a band ``BROW_BAND`` of the face height tall above each eye box, a little wider than it.
- ``mouth`` (lips and teeth): the smile cascade below the eyes, the detection nearest the geometric mouth (about
  one eye distance below the eyes, or in the lower face box), else the geometric box; padded like the eyes.
- ``hair``: pixels that are not skin in a band around the top and sides of the face box
  (an ellipse 1.45x the face's, less its lower centre), above the chin; the background that shows through that
  band counts too.
- ``skin``: skin x the face ellipse (``faces.face_region``, where ``synth --clean`` draws defects) less
  the eyes, brows and mouth; soft (in [0, 1]).
- ``outside``: outside an ellipse ``OUTSIDE_MARGIN`` times the face's (background, clothes, the hair beyond it).

Skin is what ``skin.detect_skin`` (a fixed YCbCr box) accepts, or what lies within ``CHROMA_TOLERANCE`` of the
face's own median colour (CIELAB a*, b*, taken below the eyes around the nose) and is not much darker: the fixed
box misses pale skin under cool light, which would otherwise count as hair.

Detection runs on a copy whose long side is at most ``DETECT_SIDE`` px, so a 24 MP portrait takes about a
second; the boxes are scaled back and the masks drawn at full size. Haar cascades find upright frontal faces;
glasses lenses fall in the eye boxes, frames outside them count as skin or hair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations

import torch
import torch.nn.functional as F

from gan_retouch.synth.faces import Face, face_region, find_faces
from gan_retouch.synth.skin import detect_skin

DETECT_SIDE = 1024  # long side (px) of the copy the cascades run on
SKIN_SIDE = 512  # long side (px) of the copy the skin rules run on (the masks are upsampled)
CHROMA_TOLERANCE = 12.0  # CIELAB (a*, b*) distance from the face's own median skin colour still called skin
EYE_CASCADES = ("haarcascade_eye.xml", "haarcascade_eye_tree_eyeglasses.xml")
MOUTH_CASCADE = "haarcascade_smile.xml"
EYE_PAD = 0.15  # share of an eye or mouth box's width and height added on each side (lids, lashes, lip edges)
EYE_SIZE = (0.26, 0.16)  # geometric eye box: share of the face width, height
MOUTH_CENTRE = (0.5, 0.78)  # geometric mouth centre: share of the face box from its left and top
MOUTH_SIZE = (0.46, 0.2)  # geometric mouth box: share of the face width, height
MOUTH_BELOW_EYES = 1.05  # mouth centre below the eyes' midpoint, in eye distances (when both eyes are found)
BROW_BAND = 0.14  # brow band height, share of the face height
OUTSIDE_MARGIN = 1.15  # "outside" starts this many face-ellipse radii from its centre
PARTS = ("eyes", "brows", "mouth", "hair", "skin", "outside")

Box = tuple[float, float, float, float]  # left, top, right, bottom in pixels


@dataclass
class FaceParts:
    """The face (full-size pixels), its part boxes, how each was found, and the ``[1,H,W]`` masks of ``PARTS``."""

    face: Face
    eye_boxes: list[Box]
    mouth_box: Box
    found: dict[str, str]  # part -> "cascade" or "geometric" (eyes: one word per side)
    masks: dict[str, torch.Tensor] = field(default_factory=dict)


def _cascade(name: str):  # noqa: ANN202 - a cv2.CascadeClassifier (cv2 is imported lazily)
    import cv2

    detector = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if detector.empty():
        raise RuntimeError(f"OpenCV could not load its cascade {name}")
    return detector


def _detect(gray, name: str, region: Box, min_size: float, max_size: float, neighbours: int) -> list[Box]:
    """Boxes of cascade ``name`` inside ``region`` of the uint8 array ``gray`` (in its pixels)."""
    x0, y0, x1, y1 = (int(round(v)) for v in region)
    x0, y0 = max(x0, 0), max(y0, 0)
    crop = gray[y0:y1, x0:x1]
    if crop.size == 0:
        return []
    found = _cascade(name).detectMultiScale(crop, scaleFactor=1.1, minNeighbors=neighbours,
                                            minSize=(int(min_size), int(min_size * 0.5)),
                                            maxSize=(int(max_size), int(max_size)))
    return [(x0 + x, y0 + y, x0 + x + w, y0 + y + h) for x, y, w, h in (tuple(map(float, b)) for b in found)]


def _nearest(boxes: list[Box], centre: tuple[float, float], reach: tuple[float, float]) -> Box | None:
    """The box whose centre is nearest ``centre``, if within ``reach`` (dx, dy) of it."""
    best, distance = None, float("inf")
    for box in boxes:
        dx, dy = (box[0] + box[2]) / 2 - centre[0], (box[1] + box[3]) / 2 - centre[1]
        if abs(dx) <= reach[0] and abs(dy) <= reach[1] and dx * dx + dy * dy < distance:
            best, distance = box, dx * dx + dy * dy
    return best


def _around(centre: tuple[float, float], width: float, height: float) -> Box:
    return (centre[0] - width / 2, centre[1] - height / 2, centre[0] + width / 2, centre[1] + height / 2)


def _pad(box: Box, share: float) -> Box:
    dx, dy = (box[2] - box[0]) * share, (box[3] - box[1]) * share
    return (box[0] - dx, box[1] - dy, box[2] + dx, box[3] + dy)


def _centre(box: Box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def _pair(boxes: list[Box], face: Face) -> tuple[Box, Box] | None:
    """The two boxes (left, right) that look most like a pair of eyes: apart by 0.25-0.65 of the face width,
    level within 0.25 of it, nearest the geometric eye positions in sum (a tilted head moves both)."""
    best, cost = None, float("inf")
    for a, b in combinations(sorted(boxes, key=lambda box: _centre(box)[0]), 2):
        (ax, ay), (bx, by) = _centre(a), _centre(b)
        if 0.25 * face.w <= bx - ax <= 0.65 * face.w and abs(by - ay) <= 0.25 * face.w:
            total = math.dist((ax, ay), face.eyes[0]) + math.dist((bx, by), face.eyes[1])
            if total < cost:
                best, cost = (a, b), total
    return best


def find_eyes(gray, face: Face) -> tuple[list[Box], list[str]]:
    """One unpadded eye box per side of ``face`` (pixels of ``gray``), and whether each is "cascade" or
    "geometric": the best pair of detections, else per side the detection nearest ``Face.eyes``, else there."""
    region = (face.x, face.y + 0.15 * face.h, face.x + face.w, face.y + 0.62 * face.h)
    boxes: list[Box] = []
    for name in EYE_CASCADES:
        boxes += _detect(gray, name, region, 0.1 * face.w, 0.25 * face.w, 5)
    pair = _pair(boxes, face)
    if pair:
        return list(pair), ["cascade", "cascade"]
    eyes, how = [], []
    for centre in face.eyes:
        box = _nearest(boxes, centre, (0.12 * face.w, 0.1 * face.h))
        eyes.append(box or _around(centre, EYE_SIZE[0] * face.w, EYE_SIZE[1] * face.h))
        how.append("cascade" if box else "geometric")
    return eyes, how


def find_mouth(gray, face: Face, eyes: list[Box] | None = None) -> tuple[Box, str]:
    """The unpadded mouth box of ``face`` (pixels of ``gray``), and whether it is "cascade" or "geometric". With
    both ``eyes`` found, the expected mouth lies ``MOUTH_BELOW_EYES`` eye distances below their midpoint (a
    close-up's face box is shorter); else at ``MOUTH_CENTRE`` of the face box."""
    centre = (face.x + MOUTH_CENTRE[0] * face.w, face.y + MOUTH_CENTRE[1] * face.h)
    size = (MOUTH_SIZE[0] * face.w, MOUTH_SIZE[1] * face.h)
    if eyes:
        (lx, ly), (rx, ry) = _centre(eyes[0]), _centre(eyes[1])
        distance = math.dist((lx, ly), (rx, ry))
        centre = ((lx + rx) / 2, (ly + ry) / 2 + MOUTH_BELOW_EYES * distance)
        size = (1.1 * distance, 0.5 * distance)
    region = (face.x + 0.15 * face.w, centre[1] - 0.25 * face.h, face.x + 0.85 * face.w, centre[1] + 0.25 * face.h)
    boxes = _detect(gray, MOUTH_CASCADE, region, 0.2 * face.w, 0.65 * face.w, 15)
    box = _nearest(boxes, centre, (0.12 * face.w, 0.1 * face.h))
    return (box, "cascade") if box else (_around(centre, *size), "geometric")


def _box_mask(boxes: list[Box], height: int, width: int) -> torch.Tensor:
    mask = torch.zeros(1, height, width)
    for x0, y0, x1, y1 in boxes:
        mask[:, max(int(y0), 0):max(int(round(y1)), 0), max(int(x0), 0):max(int(round(x1)), 0)] = 1.0
    return mask


def _ellipse(height: int, width: int, centre: tuple[float, float], radii: tuple[float, float]) -> torch.Tensor:
    """A ``[1,H,W]`` 0/1 mask of the pixels inside an axis-aligned ellipse."""
    ys = ((torch.arange(height, dtype=torch.float32) + 0.5 - centre[1]) / radii[1]).square()[:, None]
    xs = ((torch.arange(width, dtype=torch.float32) + 0.5 - centre[0]) / radii[0]).square()[None, :]
    return (xs + ys <= 1.0).float()[None]


def _scaled(face: Face, factor: float) -> Face:
    return Face(face.x * factor, face.y * factor, face.w * factor, face.h * factor)


def _scale_box(box: Box, factor: float) -> Box:
    return (box[0] * factor, box[1] * factor, box[2] * factor, box[3] * factor)


def skin_like(image: torch.Tensor, face: Face) -> torch.Tensor:
    """A ``[1,h,w]`` skin mask of ``image`` at most ``SKIN_SIDE`` px: ``detect_skin``, or close to the face's own
    median skin colour (module docstring); ``face`` in ``image``'s pixels."""
    import cv2
    import numpy as np

    factor = min(1.0, SKIN_SIDE / max(image.shape[-2:]))
    if factor < 1.0:
        image = F.interpolate(image[None], scale_factor=factor, mode="bilinear", antialias=True,
                              align_corners=False)[0].clamp(0.0, 1.0)
        face = _scaled(face, factor)
    lab = cv2.cvtColor(np.ascontiguousarray(image.permute(1, 2, 0).numpy(), dtype=np.float32), cv2.COLOR_RGB2Lab)
    x0, x1 = int(face.x + 0.3 * face.w), max(int(face.x + 0.7 * face.w), int(face.x + 0.3 * face.w) + 1)
    y0, y1 = int(face.y + 0.5 * face.h), max(int(face.y + 0.65 * face.h), int(face.y + 0.5 * face.h) + 1)
    patch = lab[max(y0, 0):y1, max(x0, 0):x1].reshape(-1, 3)
    fixed = detect_skin(image)
    if patch.size == 0:
        return fixed
    reference = np.median(patch, axis=0)
    chroma = np.hypot(lab[..., 1] - reference[1], lab[..., 2] - reference[2])
    close = (chroma < CHROMA_TOLERANCE) & (lab[..., 0] > 0.4 * reference[0])
    return torch.maximum(fixed, torch.from_numpy(close.astype(np.float32))[None])


def face_parts(image: torch.Tensor, detect_side: int = DETECT_SIDE) -> FaceParts | None:
    """The largest face of a ``[3,H,W]`` RGB photo in [0, 1] and the masks of its parts (module docstring);
    None when no face is found."""
    import numpy as np

    height, width = image.shape[-2:]
    factor = min(1.0, detect_side / max(height, width))
    small = image if factor == 1.0 else F.interpolate(
        image[None].float(), scale_factor=factor, mode="bilinear", antialias=True, align_corners=False)[0]
    small = small.clamp(0.0, 1.0)
    faces = find_faces(small)
    if not faces:
        return None
    face = faces[0]
    gray = np.ascontiguousarray((small.mean(0) * 255.0).round().to(torch.uint8).numpy())
    eyes, eye_how = find_eyes(gray, face)
    mouth, mouth_how = find_mouth(gray, face, eyes if eye_how == ["cascade", "cascade"] else None)
    return parts_from_boxes(image, small, _scaled(face, 1 / factor), [_scale_box(b, 1 / factor) for b in eyes],
                            _scale_box(mouth, 1 / factor), {"eyes": " ".join(eye_how), "mouth": mouth_how})


def parts_from_boxes(image: torch.Tensor, small: torch.Tensor, face: Face, eyes: list[Box], mouth: Box,
                     found: dict[str, str]) -> FaceParts:
    """The masks of ``PARTS`` at ``image``'s size from a face box and unpadded eye and mouth boxes (full-size
    pixels); ``small`` is the copy the skin rule runs on (``image`` itself at most ``DETECT_SIDE`` px)."""
    height, width = image.shape[-2:]
    eye_boxes = [_pad(box, EYE_PAD) for box in eyes]
    mouth_box = _pad(mouth, EYE_PAD)
    brow_boxes = [(x0 - 0.1 * (x1 - x0), y0 - BROW_BAND * face.h, x1 + 0.1 * (x1 - x0), y0 + 0.2 * (y1 - y0))
                  for x0, y0, x1, y1 in eye_boxes]
    masks = {"eyes": _box_mask(eye_boxes, height, width), "mouth": _box_mask([mouth_box], height, width)}
    masks["brows"] = _box_mask(brow_boxes, height, width) * (1.0 - masks["eyes"])
    features = torch.maximum(torch.maximum(masks["eyes"], masks["brows"]), masks["mouth"])
    skin_rule = F.interpolate(skin_like(small, _scaled(face, small.shape[-1] / width))[None], size=(height, width),
                              mode="bilinear", align_corners=False)[0]
    centre = (face.x + face.w / 2, face.y + face.h / 2)
    masks["skin"] = skin_rule * face_region([face], height, width) * (1.0 - features)
    band = _ellipse(height, width, (centre[0], face.y + 0.45 * face.h), (0.56 * 1.45 * face.w, 0.75 * 1.45 * face.h))
    core = _ellipse(height, width, (centre[0], face.y + 0.65 * face.h), (0.34 * face.w, 0.45 * face.h))
    band = band * (1.0 - core)
    band[:, max(int(face.y + 0.9 * face.h), 0):, :] = 0.0  # above the chin: the neck and collar are not hair
    masks["hair"] = band * (skin_rule < 0.5).float() * (1.0 - features)
    outside_radii = (0.56 * OUTSIDE_MARGIN * face.w, 0.75 * OUTSIDE_MARGIN * face.h)
    masks["outside"] = 1.0 - _ellipse(height, width, centre, outside_radii)
    return FaceParts(face, eye_boxes, mouth_box, found, {name: masks[name] for name in PARTS})
