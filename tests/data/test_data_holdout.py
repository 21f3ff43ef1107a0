"""data.holdout: which pairs or grid cells are kept out of training, and that training never sees them."""

from pathlib import Path

import pytest
import torch

from gan_retouch.config import resolve
from gan_retouch.data import build_dataset
from gan_retouch.data.holdout import cells, held_out_names, holdout_mode, region_mask
from gan_retouch.errors import ConfigError, DataError
from gan_retouch.imaging import save_image


def folder_data(root: Path, count: int, height: int = 300, width: int = 260, **data) -> dict:
    generator = torch.Generator().manual_seed(0)
    for index in range(count):
        target = torch.rand(3, height, width, generator=generator)
        save_image((target + 0.05).clamp(0, 1), root / "source" / f"p{index}.png")
        save_image(target, root / "target" / f"p{index}.png")
    options = {"source": "folder", "root": str(root), "split_ratio": [1.0, 0.0, 0.0], "crop": 32,
               "alignment": "off", "holdout": "auto", **data}
    return resolve("train", None, {"data": options})[0]["data"]


def test_auto_holds_out_pairs_from_four_pairs_on_and_regions_below() -> None:
    assert holdout_mode({"holdout": "auto", "crop": 32}, 4) == "pairs"
    assert holdout_mode({"holdout": "auto", "crop": 32}, 3) == "regions"
    assert holdout_mode({"holdout": "auto", "crop": 32}, 1) == "regions"
    with pytest.raises(ConfigError, match="at least 2 training pairs"):
        holdout_mode({"holdout": "pairs", "crop": 32}, 1)
    with pytest.raises(ConfigError, match="set data.crop"):
        holdout_mode({"holdout": "regions", "crop": None}, 2)


def test_one_pair_in_four_is_held_out_by_its_name_stably() -> None:
    names = [f"photo_{i}" for i in range(12)]
    held = held_out_names(names)
    assert len(held) == 3 and held <= set(names)
    assert held_out_names(list(reversed(names))) == held  # not the order on disk
    assert len(held_out_names(names[:2])) == 1  # at least one
    assert held_out_names(names + ["new_a", "new_b", "new_c", "new_d"]) & held  # adding pairs keeps most


def test_grid_cells_cover_the_image_and_one_in_four_is_held_out() -> None:
    data = {"crop": 128, "max_side": 1024}
    grid = cells(1200, 800, data)  # 1024 x 683 at the training scale: 4 rows, 2 columns
    assert len(grid) == 8 and sum(cell[4] for cell in grid) == 2
    mask = torch.zeros(1200, 800)
    for top, bottom, left, right, _ in grid:
        mask[top:bottom, left:right] += 1
    assert bool((mask == 1).all())  # every pixel in exactly one cell
    assert float(region_mask(1200, 800, data).mean()) == pytest.approx(0.25, abs=0.01)
    with pytest.raises(DataError, match="too small to hold out regions with data.crop=128"):
        cells(200, 900, data, "p.png")


def test_training_crops_never_come_from_held_out_cells(tmp_path) -> None:
    data = folder_data(tmp_path / "d", 1, max_side=200)  # 300 px scaled to 200: cells of the scaled image
    held = build_dataset(data, "holdout")
    region = held[0]["region"]
    assert len(held) == 1 and region.shape == (1, 300, 260) and 0.15 < float(region.mean()) < 0.3
    train = build_dataset(data, "train", seed=3)
    pixels, record = train.base._readable(0)
    # held-out cells at 255, the kept ones at most 200: a crop that touched a held-out cell would show it
    marked = {key: (value.clamp(max=200) * (1 - region.to(value.dtype)) + 255 * region.to(value.dtype))
              if key in ("input", "target") else value for key, value in pixels.items()}
    train.base._readable = lambda index: (marked, record)
    for index in range(80):
        item = train[index]
        assert item["input"].shape == (3, 32, 32)
        assert float(item["input"].max()) <= 200 / 255 + 1e-6 and float(item["target"].max()) <= 200 / 255 + 1e-6


def test_pairs_mode_trains_on_the_others_and_scores_the_held_out_pairs(tmp_path) -> None:
    data = folder_data(tmp_path / "d", 5)
    train = build_dataset(data, "train", augment=False)
    held = build_dataset(data, "holdout")
    names = {train[i]["name"] for i in range(len(train))}
    assert len(train) == 4 and len(held) == 1 and "region" not in held[0]
    assert held[0]["name"] not in names


def test_holdout_is_refused_on_synthetic_data() -> None:
    data = resolve("train", "quickstart", {"data": {"holdout": "auto"}})[0]["data"]
    with pytest.raises(ConfigError, match="data.holdout is for data.source=folder"):
        build_dataset(data, "train")
