"""Bad data files: corrupt JPEG scan data, RGBA warnings, mask/ vs masks/, and the split ``all``."""

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_retouch.data import build_dataset, read_image
from gan_retouch.data.folders import split_of
from gan_retouch.errors import DataError


def _save(path: Path, colour=(200, 100, 50), mode="RGB", size=(24, 32)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour if mode != "L" else colour[0]).save(path)


def _pairs(root: Path, names, ext=".png") -> None:
    for index, name in enumerate(names):
        _save(root / "source" / f"{name}{ext}", colour=(index * 10, 100, 50))
        _save(root / "target" / f"{name}{ext}", colour=(index * 10, 120, 60))


def _data(root: Path, **changes) -> dict:
    data = {"source": "folder", "root": str(root), "input_dir": "auto", "target_dir": "auto", "mask_dir": None,
            "split_ratio": [0.6, 0.2, 0.2], "skip_bad_pairs": False, "val_count": None, "crop": None,
            "resize": None, "augment": {"hflip": False, "rotate": 0, "salt_pepper": 0.0}}
    data.update(changes)
    return data


def _corrupt_scan_jpeg(path: Path) -> None:
    """A JPEG whose header is valid (Pillow reads its size) but whose entropy-coded scan is garbage."""
    noise = (np.random.default_rng(0).random((32, 24, 3)) * 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "JPEG", quality=90)
    data = bytearray(buffer.getvalue())
    scan = data.find(b"\xff\xda") + 30
    for position in range(scan, len(data) - 10, 7):
        data[position] = 0xFF if position % 2 else 0x00
    path.write_bytes(bytes(data))
    with Image.open(path) as header:
        assert header.size == (24, 32)  # the header alone looks fine


def test_precheck_decodes_fully_and_names_a_corrupt_jpeg(tmp_path: Path) -> None:
    _pairs(tmp_path, ["a", "b", "c"], ext=".jpg")
    _corrupt_scan_jpeg(tmp_path / "target" / "b.jpg")
    with pytest.raises(DataError, match=r"b\.jpg"):
        build_dataset(_data(tmp_path, split_ratio=[1, 0, 0]), "train")
    with pytest.warns(UserWarning, match="skipped 1"):
        dataset = build_dataset(_data(tmp_path, split_ratio=[1, 0, 0], skip_bad_pairs=True), "train")
    assert [dataset[i]["name"] for i in range(len(dataset))] == ["a", "c"]


def test_skip_bad_pairs_skips_a_file_that_breaks_after_the_precheck(tmp_path: Path) -> None:
    _pairs(tmp_path, ["a", "b", "c"])
    dataset = build_dataset(_data(tmp_path, split_ratio=[1, 0, 0], skip_bad_pairs=True, cache=False), "train")
    (tmp_path / "source" / "b.png").write_bytes(b"broken later")  # read again: the cache is off
    with pytest.warns(UserWarning, match="skipping pair b"):
        assert dataset[1]["name"] == "c"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once: the second read of the broken pair is silent
        assert dataset[1]["name"] == "c"


def test_a_broken_file_without_skip_is_a_clear_error_naming_it(tmp_path: Path) -> None:
    _pairs(tmp_path, ["a", "b"])
    dataset = build_dataset(_data(tmp_path, split_ratio=[1, 0, 0], cache=False), "train")
    (tmp_path / "target" / "a.png").write_bytes(b"broken later")  # read again: the cache is off
    with pytest.raises(DataError, match=r"a\.png"):
        dataset[0]


def test_alpha_warning_once_per_file(tmp_path: Path) -> None:
    _save(tmp_path / "rgba.png", colour=(255, 0, 0, 128), mode="RGBA")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(5):
            read_image(tmp_path / "rgba.png")
    assert sum("alpha channel dropped" in str(w.message) for w in caught) == 1


@pytest.mark.parametrize("folder", ["mask", "masks"])
@pytest.mark.parametrize("option", ["auto", "mask", "masks"])
def test_mask_and_masks_folders_are_both_found(tmp_path: Path, folder: str, option: str) -> None:
    _pairs(tmp_path, ["x", "y"])
    for name in "xy":
        _save(tmp_path / folder / f"{name}.png", colour=(255, 0, 0), mode="L")
    dataset = build_dataset(_data(tmp_path, mask_dir=option, split_ratio=[1, 0, 0]), "train")
    assert float(dataset[0]["mask"].min()) == 1.0


def test_auto_masks_are_optional_and_a_named_missing_folder_is_an_error(tmp_path: Path) -> None:
    _pairs(tmp_path, ["x", "y"])
    assert "mask" not in build_dataset(_data(tmp_path, mask_dir="auto", split_ratio=[1, 0, 0]), "train")[0]
    with pytest.raises(DataError, match="data.mask_dir='labels'"):
        build_dataset(_data(tmp_path, mask_dir="labels"), "train")


def test_split_all_is_every_pair_of_a_flat_root(tmp_path: Path) -> None:
    _pairs(tmp_path, [f"p{i:02d}" for i in range(24)])
    test = build_dataset(_data(tmp_path, split_ratio=[0.9, 0.05, 0.05]), "test")
    assert 0 < len(test) == len([i for i in range(24) if split_of(f"p{i:02d}", [0.9, 0.05, 0.05]) == "test"])
    everything = build_dataset(_data(tmp_path, split_ratio=[0.9, 0.05, 0.05]), "all")
    assert len(everything) == 24 and everything[0]["name"] == "p00"
    _pairs(tmp_path / "two", ["a", "b"])
    assert len(build_dataset(_data(tmp_path / "two"), "all")) == 2


def test_split_all_reads_every_split_folder_and_prefixes_clashing_names(tmp_path: Path) -> None:
    _pairs(tmp_path / "train", ["a", "b"])
    _pairs(tmp_path / "test", ["b", "c"])
    dataset = build_dataset(_data(tmp_path), "all")
    names = sorted(dataset[i]["name"] for i in range(len(dataset)))
    assert names == ["a", "c", "test_b", "train_b"]


def test_split_all_is_refused_for_synthetic_data() -> None:
    with pytest.raises(DataError, match="split 'all'"):
        build_dataset({"source": "synthetic", "synthetic": {}}, "all")
