"""data.rehearsal: a drawn share of a fine-tune's training crops comes from the synthetic faces, nothing else does."""

from pathlib import Path

import pytest
import torch

from gan_retouch.config import resolve
from gan_retouch.data import build_dataset
from gan_retouch.errors import ConfigError
from gan_retouch.imaging import save_image


def pair_options(root: Path, count: int = 2, **data) -> dict:
    """Folder pairs of flat grey images: a crop of a synthetic face is never flat."""
    for index in range(count):
        save_image(torch.full((3, 96, 96), 0.5), root / "source" / f"p{index}.png")
        save_image(torch.full((3, 96, 96), 0.5), root / "target" / f"p{index}.png")
    options = {"source": "folder", "root": str(root), "split_ratio": [1.0, 0.0, 0.0], "crop": 32,
               "alignment": "off", "synthetic": {"size": 64}, **data}
    return resolve("train", None, {"data": options})[0]["data"]


def synthetic_items(dataset, count: int) -> list[bool]:
    return [float(dataset[index]["input"].std()) > 0.01 for index in range(count)]


def test_the_drawn_share_of_training_crops_is_synthetic_and_stable(tmp_path: Path) -> None:
    data = pair_options(tmp_path, rehearsal=0.5)
    train = build_dataset(data, "train", seed=1)
    drawn = synthetic_items(train, 60)
    assert 15 <= sum(drawn) <= 45  # about half
    assert synthetic_items(build_dataset(data, "train", seed=1), 60) == drawn  # the same stream on resume
    item = train[drawn.index(True)]
    assert set(item) == {"input", "target", "name"} and item["input"].shape == (3, 32, 32)
    assert str(item["name"]).startswith("synthetic_")
    assert str(train[drawn.index(False)]["name"]) in ("p0", "p1")


def test_without_rehearsal_and_outside_training_every_item_is_yours(tmp_path: Path) -> None:
    assert not any(synthetic_items(build_dataset(pair_options(tmp_path / "a"), "train"), 30))
    data = pair_options(tmp_path / "b", rehearsal=0.9, holdout="auto")
    assert not any(synthetic_items(build_dataset(data, "holdout"), 2))  # the strength is chosen on your pairs
    assert not any(synthetic_items(build_dataset(data, "train", augment=False), 2))  # a fit on your pairs
    assert any(synthetic_items(build_dataset(data, "train"), 10))  # with the held-out regions left out


def test_masks_of_your_pairs_come_with_the_synthetic_crops(tmp_path: Path) -> None:
    for index in range(2):
        save_image(torch.zeros(1, 96, 96), tmp_path / "mask" / f"p{index}.png")
    train = build_dataset(pair_options(tmp_path, rehearsal=0.5), "train", seed=1)
    items = [train[index] for index in range(12)]
    assert all(set(item) == {"input", "target", "mask", "name"} for item in items)
    assert len({str(item["name"]).startswith("synthetic_") for item in items}) == 2


@pytest.mark.parametrize(("data", "message"), [
    ({"crop": None}, "set data.crop"),
    ({"source": "synthetic"}, "every pair is synthetic already"),
    ({"rehearsal": 1.0}, "data.rehearsal"),
])
def test_rehearsal_that_cannot_work_is_a_clear_error(tmp_path: Path, data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_dataset(pair_options(tmp_path, **{"rehearsal": 0.5, **data}), "train")
