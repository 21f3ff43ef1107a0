"""A run's inference.face_width: your pairs train with their face as wide as the saved plan scales faces later."""

from pathlib import Path

import pytest
import torch

from gan_retouch.config import resolve
from gan_retouch.data import build_dataset
from gan_retouch.data.augment import side_scale
from gan_retouch.data.holdout import cells, region_mask
from gan_retouch.data.training_scale import training_scale
from gan_retouch.engine.distributed import DistInfo
from gan_retouch.engine.stage import StagePlan, batch_stream
from gan_retouch.imaging import save_image
from gan_retouch.inference.face_scale import largest_face_width
from gan_retouch.inference.plan import training_plan
from gan_retouch.synth import synthesize_pair


def portrait(size: int) -> torch.Tensor:
    """A generated portrait on a skin-coloured wall whose face OpenCV's cascade finds."""
    return synthesize_pair(1, size, split="test", camera=False, glasses=0.0, backgrounds=["skin"],
                           clean_fraction=1.0, face_scale=[0.8, 1.0])["target"]


def options(root: Path, image: torch.Tensor, **data) -> dict:
    save_image(image, root / "source" / "face.png")
    save_image(image, root / "target" / "face.png")
    values = {"source": "folder", "root": str(root), "split_ratio": [1.0, 0.0, 0.0], "crop": 32,
              "alignment": "off", **data}
    return resolve("train", None, {"data": values})[0]


def test_a_pair_is_scaled_down_to_its_face_width_never_up_and_without_a_face_to_max_side() -> None:
    photo = portrait(256)
    face = largest_face_width(photo)
    assert face is not None
    assert training_scale(photo, None, round(face / 2)) == pytest.approx(0.5, abs=0.01)
    assert training_scale(photo, None, round(face * 2)) == 1.0  # never up
    assert training_scale(photo, 64, round(face / 2)) == pytest.approx(0.5, abs=0.01)  # a face: its scale
    flat = torch.full((3, 200, 100), 0.5)
    assert training_scale(flat, 100, 32) == side_scale(200, 100, 100) == 0.5
    assert training_scale(flat, None, 32) == 1.0


def test_training_crops_and_held_out_cells_are_cut_at_the_face_scale(tmp_path: Path) -> None:
    photo = portrait(512)
    width = round(largest_face_width(photo) / 2)
    data = options(tmp_path, photo, holdout="regions")["data"]
    train = build_dataset(data, "train", seed=2, face_width=width)
    assert train.base.training_scale(0) == pytest.approx(0.5, abs=0.01)
    assert train[0]["input"].shape == (3, 32, 32)
    # cells of about two crops at the training scale: 256 px there -> 4 x 4 cells, 4 held out (8 x 8 unscaled)
    assert len(cells(512, 512, data, scale=train.base.training_scale(0))) == 16
    region = build_dataset(data, "holdout", face_width=width)[0]["region"]
    assert torch.equal(region, region_mask(512, 512, data, scale=0.5))
    assert not torch.equal(region, build_dataset(data, "holdout")[0]["region"])


def test_a_run_scales_its_pairs_to_the_face_width_it_saves(tmp_path: Path) -> None:
    photo = portrait(256)
    width = round(largest_face_width(photo) / 2)
    options_ = options(tmp_path, photo, crop=None)
    options_["inference"]["face_width"] = width
    plan = StagePlan(0, "main", 1, options_)
    batch = next(iter(batch_stream(plan, 0, 0, DistInfo(), torch.device("cpu"))))
    assert training_plan(options_).face_width == width
    assert tuple(batch["input"].shape[-2:]) == pytest.approx((128, 128), abs=2)  # whole pair at half scale
