"""`gan-retouch prepare`: sub-images that hold exactly the pairs' pixels, a folder training reads, clear errors."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_retouch.cli import main
from gan_retouch.data import build_dataset
from gan_retouch.data.folders import split_of
from gan_retouch.data.pixels import read_pixels
from gan_retouch.data.prepare import positions
from gan_retouch.imaging import save_image
from gan_retouch.synth import synthesize_pair


def _write_pairs(root: Path, split: str, count: int, height: int = 80, width: int = 72) -> None:
    for index in range(count):
        pair = synthesize_pair(index, max(height, width), split=split)
        for key, folder in (("input", "source"), ("target", "target"), ("mask", "mask")):
            save_image(pair[key][:, :height, :width], root / split / folder / f"p{index}.png")


def _prepare(*args: str) -> int:
    return main(["prepare", *args])


def test_positions_cover_every_pixel_with_the_last_window_flush_with_the_edge() -> None:
    assert positions(1024, 480, 240) == [0, 240, 480, 544]
    assert positions(480, 480, 240) == [0] and positions(300, 480, 240) == [0]
    assert positions(100, 40, 30) == [0, 30, 60]


@pytest.mark.parametrize("fmt", ["npy", "png"])
def test_sub_images_hold_the_pairs_pixels_and_val_stays_whole(tmp_path: Path, fmt: str) -> None:
    _write_pairs(tmp_path / "pairs", "train", 2)
    _write_pairs(tmp_path / "pairs", "val", 1)
    out = tmp_path / "prepared"
    assert _prepare("--data", str(tmp_path / "pairs"), "--out", str(out), "--size", "48", "--step", "32",
                    "--format", fmt) == 0
    names = sorted(p.stem for p in (out / "train" / "source").iterdir())
    assert len(names) == 2 * 2 * 2 and names[:4] == ["p0_s001", "p0_s002", "p0_s003", "p0_s004"]  # 80x72: 2 x 2
    for role in ("source", "target", "mask"):
        original = read_pixels(tmp_path / "pairs" / "train" / role / "p1.png")
        last = read_pixels(out / "train" / role / f"p1_s004.{fmt}")  # rows 32-80, columns 24-72
        assert torch.equal(last, original[:, 32:80, 24:72])
        whole = read_pixels(out / "val" / role / f"p0.{fmt}")
        assert torch.equal(whole, read_pixels(tmp_path / "pairs" / "val" / role / "p0.png"))
    train = build_dataset({"source": "folder", "root": str(out), "crop": 24, "augment": {"hflip": True},
                           "mask_dir": "auto", "split_ratio": [1, 0, 0]}, "train")
    assert len(train) == 8 and train[3]["input"].shape == (3, 24, 24) and train[3]["mask"].shape == (1, 24, 24)


def test_a_flat_folder_is_split_before_cutting_and_aligned_files_become_two_folders(tmp_path: Path) -> None:
    for index in range(6):
        side = Image.new("RGB", (32, 40), (index * 30, 80, 120))
        both = Image.new("RGB", (64, 40))
        both.paste(side, (0, 0))
        both.paste(side.point(lambda v: min(255, v + 9)), (32, 0))
        both.save(tmp_path / f"a{index}.png")
    out = tmp_path / "prepared"
    assert _prepare("--data", str(tmp_path), "--out", str(out), "--size", "32", "--step", "16",
                    "--set", "data.source=aligned", "data.split_ratio=[0.15,0.85,0]") == 0
    train = {p.stem.split("_s")[0] for p in (out / "train" / "source").iterdir()}
    val = {p.stem for p in (out / "val" / "source").iterdir()}
    assert train == {f"a{i}" for i in range(6) if split_of(f"a{i}", [0.15, 0.85, 0]) == "train"} == {"a1", "a4"}
    assert val == {"a0", "a2", "a3", "a5"} and not (out / "test").exists()
    cut = np.load(out / "train" / "target" / f"{sorted(train)[0]}_s001.npy")
    assert cut.shape == (3, 32, 32)


def test_bad_inputs_are_one_line_errors_and_nothing_is_written(tmp_path: Path, capsys) -> None:
    _write_pairs(tmp_path / "pairs", "train", 1)
    (tmp_path / "taken").mkdir()
    cases = [
        (["--out", str(tmp_path / "o")], "gan-retouch prepare reads your pairs from a folder: give it with --data DIR"),
        (["--data", str(tmp_path / "pairs")], "gan-retouch prepare needs an output folder: --out DIR"),
        (["--data", str(tmp_path / "pairs"), "--out", str(tmp_path / "taken")],
         f"prepare.out {tmp_path / 'taken'} already exists: choose a new folder (prepare never writes into one)"),
        (["--data", str(tmp_path / "pairs"), "--out", str(tmp_path / "o"), "--format", "tiff"],
         "prepare.format"),
        (["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")], "is not a folder"),
        (["--data", str(tmp_path / "pairs"), "--out", str(tmp_path / "o"), "--size", "8"], "prepare.size"),
    ]
    for args, message in cases:
        assert _prepare(*args) == 2
        printed = " ".join(capsys.readouterr().out.split())
        assert printed.startswith("error:") and message in printed, printed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs", "taken"]  # no output, no temp folder left
