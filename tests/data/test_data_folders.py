"""Real pairs from disk: every layout loads, splits work, and each bad input gives its error naming the files."""

import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from gan_retouch.data import build_dataset, build_loader, read_image, read_image_with_info
from gan_retouch.errors import DataError


def _save(path: Path, size=(24, 32), colour=(200, 100, 50), mode="RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour if mode == "RGB" else colour[0]).save(path)


def _pairs(root: Path, names, input_dir="source", target_dir="target", ext=".png") -> None:
    for index, name in enumerate(names):
        _save(root / input_dir / f"{name}{ext}", colour=(index * 10, 100, 50))
        _save(root / target_dir / f"{name}{ext}", colour=(index * 10, 120, 60))


def _data(root: Path, **changes) -> dict:
    data = {"source": "folder", "root": str(root), "input_dir": "auto", "target_dir": "auto", "mask_dir": None,
            "split_ratio": [0.6, 0.2, 0.2], "skip_bad_pairs": False, "val_count": None, "crop": None,
            "resize": None, "augment": {"hflip": False, "rotate": 0, "salt_pepper": 0.0}, "num_workers": 0,
            "pin_memory": "auto", "persistent_workers": True}
    data.update(changes)
    return data


@pytest.mark.parametrize("dirs", [("source", "target"), ("image", "groundtruth"), ("A", "B")])
def test_two_folder_layouts_load(tmp_path: Path, dirs) -> None:
    _pairs(tmp_path / "train", ["a", "b"], *dirs)
    item = build_dataset(_data(tmp_path), "train")[1]
    assert item["name"] == "b" and item["input"].shape == (3, 32, 24)
    assert abs(float(item["target"][1].mean()) - 120 / 255) < 1e-6


def test_custom_folder_names_masks_and_jpeg(tmp_path: Path) -> None:
    _pairs(tmp_path, ["x", "y", "z"], "raw", "edited", ext=".jpg")
    for name in "xyz":
        _save(tmp_path / "masks" / f"{name}.png", colour=(255, 0, 0), mode="L")
    ds = build_dataset(_data(tmp_path, input_dir="raw", target_dir="edited", mask_dir="masks",
                             split_ratio=[1, 0, 0]), "train")
    assert len(ds) == 3 and ds[0]["mask"].shape == (1, 32, 24) and float(ds[0]["mask"].min()) == 1.0


def test_aligned_files_split_in_halves(tmp_path: Path) -> None:
    image = Image.new("RGB", (40, 16), (0, 0, 0))
    image.paste((255, 255, 255), (20, 0, 40, 16))
    (tmp_path / "val").mkdir()
    image.save(tmp_path / "val" / "p.png")
    item = build_dataset(_data(tmp_path, source="aligned", alignment="off"), "val")[0]  # black | white: no match
    assert item["input"].shape == item["target"].shape == (3, 16, 20)
    assert float(item["input"].max()) == 0.0 and float(item["target"].min()) == 1.0


def test_ratio_split_is_deterministic_and_disjoint(tmp_path: Path) -> None:
    _pairs(tmp_path, [f"p{i}" for i in range(10)])
    names = {s: [build_dataset(_data(tmp_path), s)[i]["name"] for i in range(len(build_dataset(_data(tmp_path), s)))]
             for s in ("train", "val", "test")}
    assert all(names[s] for s in names)  # this set's hashes give each split some pairs
    assert sorted(sum(names.values(), [])) == [f"p{i}" for i in range(10)]  # every pair in exactly one split
    assert names["val"] == [build_dataset(_data(tmp_path), "val")[i]["name"] for i in range(len(names["val"]))]


def test_val_count_limits_and_train_indices_wrap(tmp_path: Path) -> None:
    _pairs(tmp_path / "train", ["a", "b", "c"])
    _pairs(tmp_path / "val", ["d", "e", "f"])
    assert len(build_dataset(_data(tmp_path, val_count=2), "val")) == 2
    train = build_dataset(_data(tmp_path, crop=16, augment={"hflip": True, "rotate": 5, "salt_pepper": 0.0}), "train")
    assert train[4]["name"] == train[1]["name"] == "b"
    assert torch.equal(train[4]["input"], train[4]["input"])
    with pytest.raises(DataError, match="no test/"):
        build_dataset(_data(tmp_path), "test")


def test_unmatched_names_are_listed_both_ways(tmp_path: Path) -> None:
    _pairs(tmp_path, ["a", "b"])
    _save(tmp_path / "source" / "only_input.png")
    _save(tmp_path / "target" / "only_target.png")
    with pytest.raises(DataError) as error:
        build_dataset(_data(tmp_path), "train")
    assert "only_input.png" in str(error.value) and "only_target.png" in str(error.value)


def test_size_mismatch_and_corrupt_files_are_listed(tmp_path: Path) -> None:
    _pairs(tmp_path, ["a", "b", "c", "d"])
    _save(tmp_path / "target" / "b.png", size=(30, 30))
    (tmp_path / "source" / "c.png").write_bytes(b"not an image")
    with pytest.raises(DataError) as error:
        build_dataset(_data(tmp_path), "train")
    message = str(error.value)
    assert "size mismatch" in message and "b.png" in message and "c.png" in message


def test_skip_bad_pairs_skips_and_reports(tmp_path: Path) -> None:
    _pairs(tmp_path, ["a", "b", "c", "d"])
    _save(tmp_path / "target" / "b.png", size=(30, 30))
    _save(tmp_path / "source" / "lonely.png")
    with pytest.warns(UserWarning, match="skipped 2"):
        ds = build_dataset(_data(tmp_path, skip_bad_pairs=True, split_ratio=[1, 0, 0]), "train")
    assert sorted(ds[i]["name"] for i in range(len(ds))) == ["a", "c", "d"]


def test_empty_and_missing_folders(tmp_path: Path) -> None:
    (tmp_path / "source").mkdir()
    (tmp_path / "target").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        build_dataset(_data(tmp_path), "train")
    with pytest.raises(DataError, match="none of the folders"):
        build_dataset(_data(tmp_path / "source"), "train")


def test_read_image_formats_and_metadata(tmp_path: Path) -> None:
    Image.new("RGBA", (8, 6), (255, 0, 0, 128)).save(tmp_path / "rgba.png")
    with pytest.warns(UserWarning, match="alpha"):
        assert read_image(tmp_path / "rgba.png").shape == (3, 6, 8)
    Image.new("L", (8, 6), 128).save(tmp_path / "gray.png")
    with pytest.warns(UserWarning, match="grayscale"):
        assert read_image(tmp_path / "gray.png").shape == (3, 6, 8)
    Image.new("RGB", (8, 6), (0, 255, 0)).save(tmp_path / "green.webp", lossless=True)
    assert float(read_image(tmp_path / "green.webp")[1].min()) == 1.0
    Image.new("I;16", (8, 6), 65535).save(tmp_path / "deep.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image, info = read_image_with_info(tmp_path / "deep.png")
    assert info["bits"] == 16 and info["format"] == "PNG" and float(image.min()) == 1.0
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DataError, match="bad.jpg"):
        read_image(tmp_path / "bad.jpg")


def test_exif_orientation_is_applied_and_reset(tmp_path: Path) -> None:
    image = Image.new("RGB", (20, 10), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / "rot.jpg", exif=exif.tobytes(), quality=95)
    upright, info = read_image_with_info(tmp_path / "rot.jpg")
    assert upright.shape == (3, 20, 10)
    assert float(upright[:, :8].mean()) > 0.9 and float(upright[:, 12:].mean()) < 0.1  # white half on top
    reloaded = Image.Exif()
    reloaded.load(info["exif"])
    assert reloaded[0x0112] == 1


def test_loader_batches_with_workers(tmp_path: Path) -> None:
    _pairs(tmp_path / "train", ["a", "b", "c", "d"])
    data = _data(tmp_path, num_workers=1)
    batches = list(build_loader(build_dataset(data, "train"), data, batch_size=2))
    assert len(batches) == 2 and batches[0]["input"].shape == (2, 3, 32, 24) and batches[1]["name"] == ["c", "d"]
