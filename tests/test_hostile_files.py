"""Hostile files and options: palette PNGs, decompression bombs, run names that leave their folder, a
damaged ONNX file, a huge --set value. Each case once failed (garbage, a traceback, a file outside its folder)."""

import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gan_retouch.data.io as io_module
from gan_retouch.cli import main
from gan_retouch.config import resolve
from gan_retouch.data import build_dataset, read_image
from gan_retouch.data.io import PixelLimit, image_size
from gan_retouch.deploy.image_files import png_chunk, read_photo
from gan_retouch.engine.checkpoint import save_checkpoint
from gan_retouch.engine.run_folder import RunFolder
from gan_retouch.errors import ConfigError, DataError
from gan_retouch.imaging import tensor_to_pil
from gan_retouch.registry import GENERATORS

PALETTE = [(200, 30, 60), (10, 220, 90), (30, 40, 250)]


def printed(capsys: pytest.CaptureFixture) -> str:
    """What the command printed, with rich's line wrapping undone."""
    return " ".join(capsys.readouterr().out.split())


def palette_png(path: Path, transparent_index: int | None = None) -> torch.Tensor:
    """A 9x6 palette (mode P) PNG of three colour bands; returns the RGB it shows, as float [3,H,W]."""
    indices = np.repeat(np.arange(3, dtype=np.uint8), 3)[None].repeat(6, axis=0)
    image = Image.frombytes("P", (9, 6), indices.tobytes())
    image.putpalette([channel for colour in PALETTE for channel in colour])
    extra = {} if transparent_index is None else {"transparency": transparent_index}
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **extra)
    with Image.open(path) as check:
        assert check.mode == "P"
    rgb = np.array(PALETTE, dtype=np.float32)[indices] / 255.0
    return torch.from_numpy(rgb).permute(2, 0, 1)


def black_png(path: Path, side: int) -> Path:
    """A valid all-black 1-bit PNG of side x side pixels: tens of kB on disk, ``side**2`` pixels decoded."""
    rows = zlib.compress(b"\0" * ((side + 7) // 8 + 1) * side, 9)
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", rows)
                     + png_chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20000 x 20000 = 400 megapixels in about 50 kB: past Pillow's own error limit (179 MP)."""
    return black_png(tmp_path_factory.mktemp("bomb") / "bomb.png", 20000)


# ----------------------------------------------------------------------------------------------- palette PNGs
def test_palette_png_reads_as_its_colours_not_its_indices(tmp_path: Path) -> None:
    expected = palette_png(tmp_path / "p.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "grayscale image converted" warning: it is a colour image
        image = read_image(tmp_path / "p.png")
    torch.testing.assert_close(image, expected, atol=0.5 / 255, rtol=0)


def test_palette_png_with_transparency_keeps_colours_and_alpha(tmp_path: Path) -> None:
    expected = palette_png(tmp_path / "pt.png", transparent_index=1)
    with pytest.warns(UserWarning, match="alpha channel dropped"):
        torch.testing.assert_close(read_image(tmp_path / "pt.png"), expected, atol=0.5 / 255, rtol=0)
    image, info = read_photo(tmp_path / "pt.png", PixelLimit())  # what retouch reads: RGB and the alpha kept
    torch.testing.assert_close(image, expected, atol=0.5 / 255, rtol=0)
    assert info["alpha"][0, 0].tolist() == [1.0] * 3 + [0.0] * 3 + [1.0] * 3


def test_palette_pairs_train_and_test_in_colour(tmp_path: Path) -> None:
    expected = palette_png(tmp_path / "source" / "a.png")
    palette_png(tmp_path / "target" / "a.png")
    data = {"source": "folder", "root": str(tmp_path), "input_dir": "auto", "target_dir": "auto", "mask_dir": None,
            "split_ratio": [1, 0, 0], "skip_bad_pairs": False, "val_count": None}
    item = build_dataset(data, "all")[0]
    torch.testing.assert_close(item["input"], expected, atol=0.5 / 255, rtol=0)


# ----------------------------------------------------------------------------------------- decompression bombs
def test_a_bomb_is_refused_from_its_header_with_the_file_and_the_option(bomb: Path, monkeypatch) -> None:
    def no_decoding(*args, **kwargs):
        raise AssertionError("the pixels of an image over the limit must never be decoded")

    monkeypatch.setattr(io_module, "_torchvision_pixels", no_decoding)
    for read in (read_image, image_size):
        with pytest.raises(DataError) as refused:
            read(bomb)
        message = str(refused.value)
        assert "bomb.png is 20000x20000 pixels (400 megapixels)" in message
        assert "limit of 200 megapixels (data.max_pixels)" in message and "\n" not in message


def test_pillow_never_warns_about_an_image_under_our_limit(tmp_path: Path) -> None:
    large = black_png(tmp_path / "large.png", 10000)  # 100 MP: over Pillow's warning threshold, under ours
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert image_size(large) == (10000, 10000)
    with pytest.raises(DataError, match=r"large.png is 10000x10000 .* limit of 50 megapixels \(x.max\)"):
        image_size(large, PixelLimit(50_000_000, "x.max"))


def test_data_max_pixels_is_checked_before_training_or_testing(tmp_path: Path) -> None:
    for name in ("a", "b"):
        for side in ("source", "target"):
            (tmp_path / side).mkdir(exist_ok=True)
            Image.new("RGB", (40 if name == "b" else 20, 20), (90, 80, 70)).save(tmp_path / side / f"{name}.png")
    options = resolve("test", None, {"data": {"source": "folder", "root": str(tmp_path), "max_pixels": 500,
                                              "mask_dir": None}})[0]
    with pytest.raises(DataError, match=r"b.png is 40x20 pixels .*\(data.max_pixels\)") as refused:
        build_dataset(options["data"], "all")
    assert "a.png" not in str(refused.value)


def test_retouch_reports_a_bomb_in_one_line_and_does_the_rest(bomb: Path, tmp_path: Path, capsys) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "bomb.png").write_bytes(bomb.read_bytes())
    tensor_to_pil(torch.rand(3, 16, 24)).save(photos / "fine.png")
    net = GENERATORS.build("autoretouch", ngf=4, n_blocks=1)
    entry = {"name": "autoretouch", "args": {"ngf": 4, "n_blocks": 1}, "state_dict": net.state_dict()}
    checkpoint = save_checkpoint({"kind": "train", "options": resolve("train")[0], "generator": entry, "step": 0},
                                 tmp_path / "best.pt")
    status = main(["retouch", str(photos), "-o", str(tmp_path / "out"), "--checkpoint", str(checkpoint),
                   "--device", "cpu"])
    out = printed(capsys)
    assert status == 1 and (tmp_path / "out" / "fine.png").is_file()
    assert "20000x20000 pixels (400 megapixels), over the limit of 200 megapixels (retouch.max_pixels)" in out
    assert "Traceback" not in out and "DecompressionBomb" not in out


# ------------------------------------------------------------------------------------------------- run names
@pytest.mark.parametrize("name", ["../../../x", "/abs/path", ".", "..", "", "  ", "a/b", "a\\b", "new\nline",
                                  "n" * 256])
def test_a_run_name_must_be_one_plain_folder_name(name: str) -> None:
    for command in ("train", "test", "distill"):
        with pytest.raises(ConfigError, match=r"^name=.* is not a plain folder name .*--set name=my_run"):
            resolve(command, None, {"name": name})


def test_the_run_folder_checks_the_name_too(tmp_path: Path) -> None:
    options = resolve("train", None, {"checkpoints_root": str(tmp_path / "ck"), "name": "fine-2"})[0]
    assert RunFolder(options, is_main=True).path == tmp_path / "ck" / "fine-2"
    assert resolve("train", None, {"name": 2024})[0]["name"] == "2024"
    options["name"] = "../outside"  # options built in Python, past resolve()
    with pytest.raises(ConfigError, match="not a plain folder name"):
        RunFolder(options, is_main=True)
    assert not (tmp_path / "outside").exists()


# ---------------------------------------------------------------------------------------------- damaged ONNX
def test_a_damaged_onnx_next_to_the_checkpoint_is_one_clear_line(tmp_path: Path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    net = GENERATORS.build("autoretouch", ngf=4, n_blocks=1)
    entry = {"name": "autoretouch", "args": {"ngf": 4, "n_blocks": 1}, "state_dict": net.state_dict()}
    checkpoint = save_checkpoint({"kind": "train", "options": resolve("train")[0], "generator": entry, "step": 0},
                                 tmp_path / "best.pt")
    damaged = tmp_path / "best.onnx"
    damaged.write_bytes(np.random.default_rng(0).bytes(4096))
    os.utime(damaged, (checkpoint.stat().st_mtime + 5,) * 2)  # newer than the checkpoint: it is the export used
    tensor_to_pil(torch.rand(3, 16, 24)).save(tmp_path / "photo.png")
    status = main(["retouch", str(tmp_path / "photo.png"), "-o", str(tmp_path / "out"), "--checkpoint",
                   str(checkpoint), "--device", "cpu", "--set", "retouch.backend=onnxruntime"])
    out = printed(capsys)
    assert status == 2 and "Traceback" not in out
    assert f"error: cannot load the ONNX model {damaged}" in out and "gan-retouch export" in out


# ------------------------------------------------------------------------------------------- huge --set values
def test_a_huge_set_value_is_echoed_once_and_short(tmp_path: Path, capsys) -> None:
    huge = "x" * 100_000
    assert main(["train", "--set", f"train.lr={huge}"]) == 2
    out = printed(capsys)
    assert len(out) < 300 and "...(100002 characters)" in out  # the value's repr: 100,000 x and two quotes
    assert out.count("x" * 79) == 1 and "x" * 80 not in out  # echoed once, its first 80 characters
    # a value that passes resolve() and fails later: shortened in the options listing and in the error alike
    assert main(["train", "--set", f"checkpoints_root={tmp_path}", f"device={huge}"]) == 2
    listing, error = printed(capsys).split("error:")
    assert len(listing) < 5_000 and "x" * 81 not in listing and "...(100000 characters)" in listing
    assert len(error) < 300 and "x" * 81 not in error and "...(100003 characters)" in error  # 'x...x': too
