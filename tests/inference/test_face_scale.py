"""plan.face_width: the working size follows the largest face of each photo; without a face, the plan's own."""

import pytest
import torch
import torch.nn.functional as F

from gan_retouch.errors import ConfigError
from gan_retouch.inference.face_scale import face_work_size, largest_face, largest_face_width
from gan_retouch.inference.plan import InferencePlan, check_plan, overridden
from gan_retouch.inference.run import face_plan, run_plan
from gan_retouch.synth import synthesize_pair


def _portrait(size: int) -> torch.Tensor:
    """A generated portrait on a skin-coloured wall whose face OpenCV's cascade finds."""
    return synthesize_pair(1, size, split="test", camera=False, glasses=0.0, backgrounds=["skin"],
                           clean_fraction=1.0, face_scale=[0.8, 1.0])["target"]


class RecordingNetwork(torch.nn.Module):
    """Returns its input and remembers the shapes it ran at."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor, mask=None) -> torch.Tensor:
        self.shapes.append(tuple(x.shape[-2:]))
        return x


def test_the_face_of_a_larger_photo_is_found_proportionally_larger() -> None:
    small = _portrait(256)
    large = F.interpolate(small[None], scale_factor=2, mode="bilinear")[0]
    width_small, width_large = largest_face_width(small), largest_face_width(large)
    assert width_small is not None and width_large is not None
    assert width_large == pytest.approx(2 * width_small, rel=0.15)


def test_work_size_scales_the_face_to_the_learned_width_and_never_up() -> None:
    photo = _portrait(256)
    found = largest_face_width(photo)
    face = largest_face(photo)
    assert face.w == pytest.approx(found)
    assert face_work_size(found / 2, face, (256, 256)) == pytest.approx(128, abs=2)
    assert face_work_size(found * 2, face, (256, 256)) is None  # the face is already smaller: native
    assert largest_face(torch.full((3, 128, 128), 0.5)) is None


def test_run_plan_runs_each_photo_at_its_own_face_scale() -> None:
    photo = _portrait(256)
    found = largest_face_width(photo)
    network = RecordingNetwork()
    plan = InferencePlan(face_width=round(found / 2), work_size=None)
    blank = torch.full((3, 256, 256), 0.5)
    out = run_plan(plan, network, torch.stack([photo, blank]))
    assert out.shape == (2, 3, 256, 256)
    assert network.shapes[0][0] == pytest.approx(128, abs=3) and network.shapes[1] == (256, 256)
    assert face_plan(plan, blank) == (InferencePlan(work_size=None), None)


class Brightening(torch.nn.Module):
    """Adds 0.1 everywhere: an edit that would reach the eyes."""

    def forward(self, x: torch.Tensor, mask=None) -> torch.Tensor:
        return (x + 0.1).clamp(0, 1)


def test_protect_features_keeps_the_eyes_and_mouth_of_the_face_and_edits_the_rest() -> None:
    photo = _portrait(256)
    face = largest_face(photo)
    out = run_plan(InferencePlan(protect_features=True), Brightening(), photo[None])[0]
    eye = (int(face.y + 0.36 * face.h), int(face.x + 0.3 * face.w))
    mouth = (int(face.y + 0.78 * face.h), int(face.x + 0.5 * face.w))
    cheek = (int(face.y + 0.6 * face.h), int(face.x + 0.2 * face.w))
    for y, x in (eye, mouth):
        assert torch.equal(out[:, y, x], photo[:, y, x])
    assert not torch.equal(out[:, cheek[0], cheek[1]], photo[:, cheek[0], cheek[1]])
    unprotected = run_plan(InferencePlan(), Brightening(), photo[None])[0]
    assert not torch.equal(unprotected[:, eye[0], eye[1]], photo[:, eye[0], eye[1]])


def test_face_width_is_checked_and_zero_switches_it_off() -> None:
    with pytest.raises(ConfigError, match="inference.face_width = 5 is not a face width"):
        check_plan(InferencePlan(face_width=5), "inference")
    plan = InferencePlan(face_width=320)
    assert overridden(plan, {"face_width": 0}, "retouch").face_width is None
    assert overridden(plan, {"face_width": None}, "retouch").face_width == 320
    assert "largest face is 320 px wide" in plan.describe(1024, 1024)
