"""The synthetic benchmark: determinism, exact ground truth outside the blemish mask, masks that fit the images."""

import pytest
import torch

from gan_retouch.data import build_dataset, synthesize_pair
from gan_retouch.errors import ConfigError

KEYS = ("input", "target", "mask", "skin")


def test_pairs_are_deterministic_and_distinct() -> None:
    first, again = synthesize_pair(3, 64, seed=1), synthesize_pair(3, 64, seed=1)
    for key in KEYS:
        assert torch.equal(first[key], again[key])
    other = synthesize_pair(4, 64, seed=1)
    assert not torch.equal(first["target"], other["target"])
    assert not torch.equal(first["target"], synthesize_pair(3, 64, seed=1, split="val")["target"])


def test_shapes_ranges_and_name() -> None:
    pair = synthesize_pair(0, 96)
    assert pair["input"].shape == pair["target"].shape == (3, 96, 96)
    assert pair["mask"].shape == pair["skin"].shape == (1, 96, 96)
    for key in KEYS:
        assert pair[key].dtype == torch.float32
        assert 0.0 <= float(pair[key].min()) and float(pair[key].max()) <= 1.0
    assert pair["name"] == "synthetic_train_000000"


def test_without_tone_defect_pairs_differ_only_inside_the_mask() -> None:
    pair = synthesize_pair(2, 96, tone_defect=0.0)
    outside = pair["mask"][0] == 0
    assert torch.equal(pair["input"][:, outside], pair["target"][:, outside])
    inside = ~outside
    assert inside.any(), "some defect must be drawn"
    assert (pair["input"][:, inside] - pair["target"][:, inside]).abs().max() > 0.05


def test_defects_lie_on_skin_and_mask_marks_changed_pixels() -> None:
    pair = synthesize_pair(5, 96, tone_defect=0.0, acne=[6, 6], spots=[3, 3])
    mask, skin = pair["mask"][0] > 0, pair["skin"][0]
    assert float(skin[mask].min()) > 0.0
    changed = (pair["input"] - pair["target"]).abs().amax(0) > 0
    assert mask.float().sum() > 10 and changed[mask].float().mean() > 0.9


def test_tone_defect_changes_skin_but_not_background() -> None:
    clean, toned = synthesize_pair(1, 64, tone_defect=0.0), synthesize_pair(1, 64, tone_defect=1.0)
    no_skin = (clean["skin"][0] == 0) & (clean["mask"][0] == 0)
    assert torch.equal(toned["input"][:, no_skin], toned["target"][:, no_skin])
    assert not torch.equal(clean["input"], toned["input"])


def test_same_face_at_two_sizes() -> None:
    small, large = synthesize_pair(7, 64), synthesize_pair(7, 128)
    shrunk = torch.nn.functional.interpolate(large["skin"][None], size=(64, 64), mode="area")[0]
    assert (shrunk - small["skin"]).abs().mean() < 0.05


def test_zero_counts_and_bad_options() -> None:
    pair = synthesize_pair(0, 64, acne=[0, 0], spots=[0, 0], freckle_clusters=[0, 0], marks=[0, 0], tone_defect=0.0)
    assert torch.equal(pair["input"], pair["target"]) and pair["mask"].sum() == 0
    with pytest.raises(ConfigError, match="acne"):
        synthesize_pair(0, 64, acne=[5, 1])
    with pytest.raises(ConfigError, match="split"):
        synthesize_pair(0, 64, split="training")


def _synthetic_data(**changes) -> dict:
    data = {
        "source": "synthetic", "val_count": 3, "crop": 48, "resize": None,
        "augment": {"hflip": True, "rotate": 10, "salt_pepper": 0.0},
        "synthetic": {"size": 64, "train_count": None, "val_count": 5, "test_count": 2, "seed": 0,
                      "acne": [2, 8], "spots": [1, 5], "freckle_clusters": [0, 2], "marks": [0, 3],
                      "defect_scale": 1.0, "tone_defect": 0.5},
    }
    data.update(changes)
    return data


def test_synthetic_dataset_splits_and_virtual_indices() -> None:
    train = build_dataset(_synthetic_data(), "train", seed=3)
    assert len(train) >= 2**30
    a, b = train[12], train[12]
    assert a["input"].shape == (3, 48, 48) and set(a) == {"input", "target", "mask", "skin", "name"}
    for key in KEYS:
        assert torch.equal(a[key], b[key])
    assert not torch.equal(train[12]["target"], build_dataset(_synthetic_data(), "train", seed=4)[12]["target"])
    val = build_dataset(_synthetic_data(), "val")
    assert len(val) == 3 and val[0]["input"].shape == (3, 64, 64)
    assert torch.equal(val[1]["target"], synthesize_pair(1, 64, split="val")["target"])
    assert len(build_dataset(_synthetic_data(), "test")) == 2
    finite = build_dataset(_synthetic_data(synthetic={**_synthetic_data()["synthetic"], "train_count": 4}), "train")
    assert len(finite) == 4 and finite[6]["name"] == finite[2]["name"]
