"""Paired augmentation keeps input, target and mask aligned, and is a pure function of its generator."""

import pytest
import torch

from gan_retouch.data.augment import AugmentOptions, augment_item, draw_geometry, salt_and_pepper
from gan_retouch.errors import ConfigError


def _item() -> dict:
    ramp = torch.linspace(0, 1, 40)
    noise = torch.rand(32, 40, generator=torch.Generator().manual_seed(0))
    image = torch.stack([ramp[None, :].expand(32, 40), ramp[:32, None].expand(32, 40), noise])
    return {"input": image.clone(), "target": image.clone() * 0.5, "mask": image[:1].clone(), "name": "x"}


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_geometry_is_identical_on_input_target_and_mask() -> None:
    options = AugmentOptions(crop=20, hflip=True, rotate=10.0)
    for seed in range(6):
        out = augment_item(_item(), options, _generator(seed))
        assert out["input"].shape == (3, 20, 20) and out["mask"].shape == (1, 20, 20)
        torch.testing.assert_close(out["target"], out["input"] * 0.5)  # would fail if geometries differed
        torch.testing.assert_close(out["mask"], out["input"][:1])


def test_crop_and_flip_without_rotation_are_exact_pixel_copies() -> None:
    item = _item()
    flipped_seen = False
    for seed in range(8):
        out = augment_item(item, AugmentOptions(crop=16, hflip=True), _generator(seed))
        windows = item["input"].unfold(1, 16, 1).unfold(2, 16, 1).permute(1, 2, 0, 3, 4)
        matches = (windows == out["input"]).flatten(2).all(-1)
        flipped = (windows == out["input"].flip(-1)).flatten(2).all(-1)
        assert matches.any() or flipped.any()
        flipped_seen |= bool(flipped.any()) and not bool(matches.any())
    assert flipped_seen


def test_rotation_uses_reflected_borders_and_keeps_values_in_range() -> None:
    item = {"input": torch.ones(3, 32, 32), "target": torch.ones(3, 32, 32), "name": "x"}
    out = augment_item(item, AugmentOptions(rotate=30.0), _generator(1))
    torch.testing.assert_close(out["input"], torch.ones(3, 32, 32))  # zero padding would darken the corners


def test_same_generator_seed_same_result() -> None:
    options = AugmentOptions(crop=24, hflip=True, rotate=10.0, salt_pepper=0.01)
    a, b = augment_item(_item(), options, _generator(9)), augment_item(_item(), options, _generator(9))
    assert torch.equal(a["input"], b["input"]) and torch.equal(a["target"], b["target"])


def test_max_side_scales_the_longer_side_down_and_keeps_the_aspect() -> None:
    geometry = draw_geometry((90, 60), AugmentOptions(max_side=45), _generator(0))
    assert geometry.zoomed == (45, 30) and geometry.size == (45, 30)
    for max_side in (90, None):  # never up; null = off
        assert draw_geometry((90, 60), AugmentOptions(max_side=max_side), _generator(0)).factor == 1.0
    zoomed = draw_geometry((90, 60), AugmentOptions(max_side=45, crop=20, scale=(0.9, 0.9)), _generator(0))
    assert zoomed.factor == pytest.approx(0.45) and zoomed.zoomed == (40, 27)  # the random zoom multiplies the fit
    limited = draw_geometry((90, 60), AugmentOptions(max_side=45, crop=20, scale=(0.5, 0.5)), _generator(0))
    assert limited.factor == pytest.approx(20 / 60)  # ... and never goes below the crop
    ramp = torch.linspace(0, 1, 90)[:, None].expand(90, 60)
    item = {"input": ramp.expand(3, 90, 60).clone(), "target": ramp.expand(3, 90, 60).clone(), "name": "x"}
    out = augment_item(item, AugmentOptions(max_side=45), _generator(0))
    assert out["input"].shape == (3, 45, 30)
    torch.testing.assert_close(out["input"][0, :, 0], torch.linspace(0, 1, 45), atol=0.02, rtol=0)  # whole image, scaled
    with pytest.raises(ConfigError, match="data.max_side"):
        AugmentOptions.from_data({"max_side": 0})


def test_resize_then_crop() -> None:
    out = augment_item(_item(), AugmentOptions(resize=64, crop=48), _generator(0))
    assert out["input"].shape == (3, 48, 48) and out["mask"].shape == (1, 48, 48)


def test_salt_and_pepper_touches_only_the_input() -> None:
    item = {"input": torch.full((3, 64, 64), 0.5), "target": torch.full((3, 64, 64), 0.5), "name": "x"}
    out = augment_item(item, AugmentOptions(salt_pepper=0.05), _generator(2))
    hit = (out["input"] != 0.5).any(0)
    assert 0.02 < hit.float().mean() < 0.08
    assert set(out["input"][:, hit].unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(out["target"], item["target"])
    assert torch.equal(salt_and_pepper(item["input"], 0.0, _generator(0)), item["input"])


def test_scale_zooms_before_the_crop_and_keeps_pairs_aligned() -> None:
    item = _item()
    options = AugmentOptions(crop=16, scale=(0.5, 2.0))
    scales = set()
    for seed in range(8):
        out = augment_item(item, options, _generator(seed))
        assert out["input"].shape == (3, 16, 16)
        torch.testing.assert_close(out["target"], out["input"] * 0.5)
        ramp = out["input"][0, 0]  # the x ramp: its slope per pixel is the zoom's inverse
        scales.add(round(float((ramp[1:] - ramp[:-1]).mean()) * 39, 1))
    assert len(scales) > 3  # different zooms, not one fixed factor
    small = augment_item(item, AugmentOptions(crop=30, scale=(0.25, 0.25)), _generator(0))
    assert small["input"].shape == (3, 30, 30)  # a zoom below the crop is raised to fit it, never an error


def test_scale_without_crop_keeps_the_size_so_batches_stack() -> None:
    assert augment_item(_item(), AugmentOptions(scale=(0.5, 0.5)), _generator(0))["input"].shape == (3, 32, 40)
    zoomed = augment_item(_item(), AugmentOptions(scale=(2.0, 2.0)), _generator(0))
    assert zoomed["input"].shape == (3, 32, 40) and zoomed["mask"].shape == (1, 32, 40)
    slope = zoomed["input"][0, 0]
    assert float((slope[1:] - slope[:-1]).mean()) * 39 == pytest.approx(0.5, abs=0.05)  # zoomed in 2x, then cropped


@pytest.mark.parametrize("value", [[0.5], [1.0, 0.5], [0.1, 1.0], [1.0, 5.0], "big", [True, 1.0]])
def test_bad_scale_is_a_clear_error(value) -> None:
    with pytest.raises(ConfigError, match=r"data\.augment\.scale must be \[min, max\]"):
        AugmentOptions.from_data({"augment": {"scale": value}})
