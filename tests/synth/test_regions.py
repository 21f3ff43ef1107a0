"""synth/regions.py: the parts of a face land where the face's eyes, brows, mouth, hair and skin are."""

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from gan_retouch.synth.faces import Face
from gan_retouch.synth.family import SynthOptions
from gan_retouch.synth.portrait import render_portrait
from gan_retouch.synth.regions import PARTS, _pair, face_parts, parts_from_boxes

# The portrait of test_data_synth_command's detected face: OpenCV's frontal cascade finds it.
PORTRAIT = SynthOptions.from_mapping({"camera": False, "glasses": 0.0, "backgrounds": ["skin"],
                                      "clean_fraction": 1.0, "face_scale": [0.8, 1.0]})


def test_the_eyes_of_a_procedural_portrait_are_inside_the_eye_mask_and_off_the_skin() -> None:
    portrait = render_portrait((0, "test", 1), 192, PORTRAIT)
    parts = face_parts(portrait.image)
    assert parts is not None
    for x, y in portrait.eyes:
        assert parts.masks["eyes"][0, int(y), int(x)] == 1.0
        assert parts.masks["skin"][0, int(y), int(x)] == 0.0 and parts.masks["outside"][0, int(y), int(x)] == 0.0
    assert all(parts.masks[name].shape == (1, 192, 192) for name in PARTS)


def test_detection_on_a_downscaled_copy_gives_full_size_masks_in_place() -> None:
    portrait = render_portrait((0, "test", 1), 192, PORTRAIT)
    big = F.interpolate(portrait.image[None], scale_factor=4, mode="bilinear", align_corners=False)[0]
    parts = face_parts(big, detect_side=192)
    assert parts is not None and parts.masks["eyes"].shape == (1, 768, 768)
    for x, y in portrait.eyes:
        assert parts.masks["eyes"][0, int(4 * y), int(4 * x)] == 1.0
    assert 300 < parts.face.w < 400  # the face box of the 192 px copy, scaled back


def test_a_photo_without_a_face_gives_none() -> None:
    assert face_parts(torch.full((3, 96, 128), 0.6)) is None


def _drawn_face() -> tuple[torch.Tensor, Face, list, tuple]:
    """A face drawn with OpenCV on a blue wall: skin ellipse, dark hair cap, two dark eyes, red lips."""
    canvas = np.zeros((200, 200, 3), np.uint8)
    canvas[:] = (40, 60, 150)  # a blue wall (RGB)
    cv2.ellipse(canvas, (100, 110), (58, 75), 0, 0, 360, (225, 170, 140), -1)  # skin
    cv2.ellipse(canvas, (100, 60), (66, 36), 0, 180, 360, (30, 20, 15), -1)  # hair above the forehead
    for x in (76, 124):
        cv2.ellipse(canvas, (x, 100), (10, 5), 0, 0, 360, (30, 30, 40), -1)  # eyes
    cv2.ellipse(canvas, (100, 150), (18, 7), 0, 0, 360, (170, 40, 50), -1)  # lips
    image = torch.from_numpy(canvas).permute(2, 0, 1).float() / 255.0
    face = Face(50.0, 55.0, 100.0, 110.0)
    return image, face, [(64.0, 93.0, 88.0, 107.0), (112.0, 93.0, 136.0, 107.0)], (80.0, 141.0, 120.0, 159.0)


def test_the_parts_of_a_drawn_face_cover_its_features() -> None:
    image, face, eyes, mouth = _drawn_face()
    parts = parts_from_boxes(image, image, face, eyes, mouth, {})
    masks = {name: mask[0] for name, mask in parts.masks.items()}
    for x in (76, 124):
        assert masks["eyes"][100, x - 12: x + 13].min() == 1.0  # the whole eye and its corners
        assert masks["brows"][85, x] == 1.0 and masks["eyes"][85, x] == 0.0  # the band above it
    assert masks["mouth"][150, 85:116].min() == 1.0
    assert masks["skin"][125, 70] > 0.9 and masks["skin"][100, 76] == 0.0 and masks["skin"][150, 100] == 0.0
    assert masks["hair"][40, 100] == 1.0 and masks["hair"][125, 70] == 0.0  # the cap, not the cheek
    assert masks["outside"][5, 5] == 1.0 and masks["outside"][110, 100] == 0.0
    assert masks["outside"][195, 30] == 1.0 and masks["hair"][195, 30] == 0.0  # beside the chin: not hair


def test_a_tilted_pair_of_eye_detections_beats_the_geometric_positions() -> None:
    face = Face(0.0, 0.0, 100.0, 100.0)  # geometric eyes at (30, 40) and (70, 40)
    left, right, brow = (40.0, 45.0, 56.0, 57.0), (66.0, 30.0, 82.0, 42.0), (44.0, 30.0, 56.0, 36.0)
    assert _pair([right, brow, left], face) == (left, right)  # 26 px apart, tilted: a pair
    assert _pair([left, brow], face) is None  # 4 px apart: one eye and its brow, not two eyes
