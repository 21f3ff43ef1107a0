"""The alignment check of the pre-check: moved, cropped-and-resized or foreign targets are named; retouches pass."""

import warnings
from functools import cache
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gan_retouch.data import build_dataset
from gan_retouch.data.alignment import check_alignment
from gan_retouch.errors import ConfigError, DataError
from gan_retouch.imaging import save_image
from gan_retouch.synth import synthesize_pair


def _pixels(image: torch.Tensor) -> torch.Tensor:
    return (image.clamp(0, 1) * 255).round().to(torch.uint8)


@cache  # generating a face is the slow part; the tests never change the tensors
def _pair(index: int, size: int = 192, mode: str = "standard") -> tuple[torch.Tensor, torch.Tensor]:
    pair = synthesize_pair(index, size, split="val", mode=mode)
    return _pixels(pair["input"]), _pixels(pair["target"])


def _shifted(image: torch.Tensor, pixels: int) -> torch.Tensor:
    """The image moved right by ``pixels`` (the left columns repeated), as a layer nudged in an editor."""
    return torch.cat([image[..., :pixels], image[..., :-pixels]], dim=-1)


def _crop_resized(image: torch.Tensor, share: float) -> torch.Tensor:
    """``share`` of each side cropped away and the rest resized back to the full size, as an editor export does."""
    height, width = image.shape[-2:]
    cut = round(share * min(height, width))
    inner = image[:, cut : height - cut, cut : width - cut].float()[None]
    return F.interpolate(inner, size=(height, width), mode="bilinear", antialias=True)[0].round().to(torch.uint8)


@pytest.mark.parametrize("mode", ["standard", "subtle"])
def test_synthetic_retouches_are_aligned(mode: str) -> None:
    for index in range(3):
        result = check_alignment(*_pair(index, mode=mode))
        assert result.aligned, result.describe()
        assert result.ssim > 0.9 and result.moved == []


def test_a_target_shifted_by_8_px_is_flagged_with_its_shift() -> None:
    source, target = _pair(0)
    result = check_alignment(source, _shifted(target, 8))
    assert not result.aligned
    assert result.moved == [(0, 8)]
    assert "shifted by +8 px across and +0 px down" in result.describe()


def test_a_target_from_another_photo_is_flagged() -> None:
    source, _ = _pair(0)
    _, other = _pair(1)
    result = check_alignment(source, other)
    assert not result.aligned
    assert "not another one" in result.describe()


@pytest.mark.parametrize("share", [0.03, 0.01])
def test_a_target_cropped_and_resized_by_a_few_percent_is_flagged(share: float) -> None:
    source, target = _pair(2)
    result = check_alignment(source, _crop_resized(target, share))
    assert not result.aligned
    assert "crop and resize" in result.describe()


def test_flat_and_tiny_pairs_say_nothing() -> None:
    flat = torch.full((3, 64, 64), 120, dtype=torch.uint8)
    assert check_alignment(flat, flat.clone() + 20).aligned  # no structure: no clear match anywhere, no claim
    tiny = torch.randint(0, 255, (3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert check_alignment(tiny, tiny.clone()).aligned


def test_16_bit_and_grey_pixels_are_checked_too() -> None:
    source, target = _pair(0)
    wide = lambda image: image.to(torch.int32).mul(257).to(torch.uint16)  # noqa: E731
    assert check_alignment(wide(source), wide(target)).aligned
    assert not check_alignment(wide(source), wide(_shifted(target, 8))).aligned
    assert not check_alignment(source[1:2], _shifted(target, 8)[1:2]).aligned


def _folder(root: Path, shifted: bool = True) -> None:
    for index in range(3):
        source, target = _pair(index, size=96)
        if index == 1 and shifted:
            target = _shifted(target, 8)
        save_image(source.float() / 255, root / "train" / "source" / f"p{index}.png")
        save_image(target.float() / 255, root / "train" / "target" / f"p{index}.png")


def _data(root: Path, **changes) -> dict:
    data = {"source": "folder", "root": str(root), "mask_dir": None, "split_ratio": [1, 0, 0], "crop": None,
            "augment": {}, "cache": "auto", "alignment": "warn", "skip_bad_pairs": False}
    return {**data, **changes}


def test_the_pre_check_warns_one_line_per_misaligned_pair(tmp_path: Path) -> None:
    _folder(tmp_path)
    with pytest.warns(UserWarning) as caught:
        dataset = build_dataset(_data(tmp_path), "train")
    lines = [str(w.message) for w in caught if "data.alignment" in str(w.message)]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert lines[0].startswith(f"data.alignment: {tmp_path / 'train' / 'source' / 'p1.png'} and ")
    assert "p1.png do not line up: the target is shifted by +8 px across" in lines[0]
    assert len(dataset) == 3  # a warning only: the pair is still used


def test_alignment_error_stops_and_skip_bad_pairs_skips_the_pair(tmp_path: Path) -> None:
    _folder(tmp_path)
    with pytest.raises(DataError, match=r"(?s)1 problem\(s\) .*p1\.png do not line up: the target is shifted by \+8 px"):
        build_dataset(_data(tmp_path, alignment="error"), "train")
    with pytest.warns(UserWarning, match="skipped 1 bad or unmatched pair"):
        dataset = build_dataset(_data(tmp_path, alignment="error", skip_bad_pairs=True), "train")
    assert [dataset[i]["name"] for i in range(len(dataset))] == ["p0", "p2"]


def test_alignment_off_checks_nothing_and_good_folders_are_silent(tmp_path: Path) -> None:
    _folder(tmp_path / "shifted")
    _folder(tmp_path / "good", shifted=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(build_dataset(_data(tmp_path / "shifted", alignment="off"), "train")) == 3
        assert len(build_dataset(_data(tmp_path / "good"), "train")) == 3
    with pytest.raises(ConfigError, match=r"data\.alignment must be one of warn, error, off, got 'strict'"):
        build_dataset(_data(tmp_path / "good", alignment="strict"), "train")
