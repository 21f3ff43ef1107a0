"""The in-memory cache of decoded pairs: one decode per file per run, the same items as from disk, clear limits."""

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from gan_retouch.data import build_dataset
from gan_retouch.data import cache as cache_module
from gan_retouch.data import io as io_module
from gan_retouch.data.cache import decoded_bytes
from gan_retouch.data.pixels import read_pixels
from gan_retouch.errors import ConfigError, DataError
from gan_retouch.imaging import save_image
from gan_retouch.synth import synthesize_pair


def _write_pairs(root: Path, split: str, count: int, size: int = 48, ext: str = ".png") -> None:
    for index in range(count):
        pair = synthesize_pair(index, size, split=split)
        for key, folder in (("input", "source"), ("target", "target"), ("mask", "mask")):
            save_image(pair[key], root / split / folder / f"p{index}{ext}")


def _data(root: Path, **changes) -> dict:
    data = {"source": "folder", "root": str(root), "input_dir": "auto", "target_dir": "auto", "mask_dir": "auto",
            "split_ratio": [0.9, 0.05, 0.05], "skip_bad_pairs": False, "val_count": None, "crop": 24, "resize": None,
            "augment": {"hflip": True, "rotate": 5, "scale": [0.5, 1.0], "salt_pepper": 0.0}, "num_workers": 0,
            "cache": "auto", "cache_mb": None, "alignment": "warn"}
    data.update(changes)
    return data


@pytest.fixture
def decodes(monkeypatch) -> Counter:
    """Counts the decodes of each file (every read of an image file goes through ``io._decode``)."""
    counts: Counter = Counter()
    real = io_module._decode

    def counting(path, *args, **kwargs):
        counts[str(path)] += 1
        return real(path, *args, **kwargs)

    monkeypatch.setattr(io_module, "_decode", counting)
    return counts


def _read_everything(root: Path, cache) -> None:
    train = build_dataset(_data(root, cache=cache), "train", seed=1)
    val = build_dataset(_data(root, cache=cache), "val")
    for _ in range(2):  # two epochs of training items and two validations
        for index in range(2 * len(train)):
            train[index]
        for index in range(len(val)):
            val[index]


def test_a_cached_run_decodes_each_file_once(tmp_path: Path, decodes: Counter) -> None:
    _write_pairs(tmp_path, "train", 3)
    _write_pairs(tmp_path, "val", 2)
    _read_everything(tmp_path, "auto")
    files = sorted(str(path) for path in tmp_path.rglob("*.png"))
    assert len(files) == 15 and sorted(decodes) == files
    assert set(decodes.values()) == {1}  # the pre-checks decode each file once; every item after that is from memory


def test_without_the_cache_files_are_decoded_again_for_every_item(tmp_path: Path, decodes: Counter) -> None:
    _write_pairs(tmp_path, "train", 3)
    _write_pairs(tmp_path, "val", 2)
    _read_everything(tmp_path, False)
    assert min(decodes.values()) >= 3 and sum(decodes.values()) > 3 * 15


def test_cached_items_equal_the_items_read_from_disk(tmp_path: Path) -> None:
    _write_pairs(tmp_path, "train", 2)
    _write_pairs(tmp_path, "val", 1)
    for split in ("train", "val"):
        cached = build_dataset(_data(tmp_path, cache=True), split, seed=3)
        disk = build_dataset(_data(tmp_path, cache=False), split, seed=3)
        for index in range(4 if split == "train" else 1):
            a, b = cached[index], disk[index]
            assert a["name"] == b["name"]
            for key in ("input", "target", "mask"):
                assert torch.equal(a[key], b[key])


def test_cache_true_that_does_not_fit_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    _write_pairs(tmp_path, "train", 2)
    monkeypatch.setattr(cache_module, "available_memory", lambda: 4096)
    with pytest.raises(ConfigError, match=r"data\.cache=true: the decoded pairs of .* need 0\.0[0-9] MB of memory, "
                                          r"but 0\.00 MB may be used \(half of the 0\.00 MB available now\)\. Raise "
                                          r"data\.cache_mb"):
        build_dataset(_data(tmp_path, cache=True), "train")
    with pytest.raises(ConfigError, match=r"need .* but 0\.00 MB may be used \(data\.cache_mb=0\.001\)"):
        build_dataset(_data(tmp_path, cache=True, cache_mb=0.001), "train")


def test_auto_cache_that_does_not_fit_warns_and_reads_from_disk(tmp_path: Path, monkeypatch, decodes) -> None:
    _write_pairs(tmp_path, "train", 2)
    monkeypatch.setattr(cache_module, "available_memory", lambda: 4096)
    with pytest.warns(UserWarning, match=r"data\.cache=auto: the decoded pairs of .* more than the cache may use"):
        dataset = build_dataset(_data(tmp_path), "train")
    before = sum(decodes.values())
    dataset[0]
    assert sum(decodes.values()) > before


def test_a_bad_cache_setting_is_a_clear_error(tmp_path: Path) -> None:
    _write_pairs(tmp_path, "train", 1)
    with pytest.raises(ConfigError, match=r"data\.cache must be auto, true or false, got 'yes'"):
        build_dataset(_data(tmp_path, cache="yes"), "train")


def test_a_file_changed_on_disk_is_decoded_again(tmp_path: Path) -> None:
    _write_pairs(tmp_path, "train", 2)
    first = build_dataset(_data(tmp_path, crop=None, augment={}), "train")
    assert float(first[0]["input"][1].max()) > 0.0
    Image.new("RGB", (48, 48), (255, 0, 0)).save(tmp_path / "train" / "source" / "p0.png")
    second = build_dataset(_data(tmp_path, crop=None, augment={}, alignment="off"), "train")
    assert float(second[0]["input"][0].min()) == 1.0 and float(second[0]["input"][1].max()) == 0.0


def test_loader_workers_read_the_cache_not_the_files(tmp_path: Path) -> None:
    _write_pairs(tmp_path, "train", 2)
    dataset = build_dataset(_data(tmp_path), "train")
    for path in tmp_path.rglob("*.png"):
        path.unlink()  # only the cache can serve the items now
    batch = next(iter(DataLoader(dataset, batch_size=2, num_workers=2)))
    assert batch["input"].shape == (2, 3, 24, 24)


@pytest.mark.parametrize("array", [np.zeros((10, 20, 3), np.uint8), np.zeros((10, 20, 4), np.uint8),
                                   np.zeros((10, 20), np.uint8), np.full((10, 20), 40000, np.uint16),
                                   np.zeros((10, 20, 2), np.uint8)], ids=["RGB", "RGBA", "L", "I;16", "LA"])
def test_the_size_from_the_header_is_the_decoded_size(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "image.png"
    Image.fromarray(array).save(path)
    assert decoded_bytes(path) == read_pixels(path).nbytes


def test_the_size_of_16_bit_rgb_jpeg_npy_and_palette_files(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "rgb16.png"), np.full((10, 20, 3), 40000, np.uint16))
    Image.new("RGB", (20, 10), (9, 90, 200)).save(tmp_path / "photo.jpg")
    np.save(tmp_path / "pixels.npy", np.zeros((3, 10, 20), np.uint16))
    for name in ("rgb16.png", "photo.jpg", "pixels.npy"):
        assert decoded_bytes(tmp_path / name) == read_pixels(tmp_path / name).nbytes == 20 * 10 * (
            6 if name != "photo.jpg" else 3)
    Image.new("RGB", (20, 10), (200, 10, 10)).convert("P").save(tmp_path / "palette.png")
    assert decoded_bytes(tmp_path / "palette.png") >= read_pixels(tmp_path / "palette.png").nbytes  # never too low


def test_npy_pairs_load_like_the_images_they_hold(tmp_path: Path) -> None:
    _write_pairs(tmp_path / "png", "train", 2)
    for path in (tmp_path / "png").rglob("*.png"):
        target = tmp_path / "npy" / path.relative_to(tmp_path / "png").with_suffix(".npy")
        target.parent.mkdir(parents=True, exist_ok=True)
        np.save(target, read_pixels(path).numpy())
    png = build_dataset(_data(tmp_path / "png", cache=False), "train", seed=2)
    npy = build_dataset(_data(tmp_path / "npy", cache=False), "train", seed=2)
    for index in range(3):
        assert torch.equal(png[index]["input"], npy[index]["input"])
        assert torch.equal(png[index]["mask"], npy[index]["mask"])


@pytest.mark.parametrize("content", [np.zeros((10, 20), np.uint8), np.zeros((3, 10, 20), np.float64),
                                     np.array([{"a": 1}], dtype=object), b"not an array"])
def test_a_bad_npy_file_is_a_clear_error_naming_it(tmp_path: Path, content) -> None:
    _write_pairs(tmp_path, "train", 1)
    bad = tmp_path / "train" / "source" / "p0.npy"
    (tmp_path / "train" / "source" / "p0.png").unlink()
    if isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        np.save(bad, content, allow_pickle=True)
    with pytest.raises(DataError, match=r"cannot read .*p0\.npy: .*uint8 or uint16 \[C,H,W\] pixels"):
        build_dataset(_data(tmp_path), "train")


def test_an_npy_file_over_data_max_pixels_is_refused_from_its_header(tmp_path: Path, monkeypatch) -> None:
    _write_pairs(tmp_path, "train", 1)
    np.save(tmp_path / "train" / "source" / "p0.npy", np.zeros((3, 48, 48), np.uint8))
    (tmp_path / "train" / "source" / "p0.png").unlink()
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("the pixels were read"))
    with pytest.raises(DataError, match=r"p0\.npy is 48x48 pixels .* over the limit .* \(data\.max_pixels\)"):
        build_dataset(_data(tmp_path, max_pixels=1000), "train")
