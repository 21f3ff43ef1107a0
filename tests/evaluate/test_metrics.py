"""Metrics against independent references: hand-computed PSNR, a plain SSIM written here, pytorch-msssim."""

import math

import pytest
import pytorch_msssim
import torch
import torch.nn.functional as F

from gan_retouch.errors import DataError
from gan_retouch.metrics import (
    competition_score,
    compute_metrics,
    masked_psnr,
    ms_ssim,
    ms_ssim_scales,
    psnr,
    rmse,
    ssim,
)


def _pair(size: int = 48, batch: int = 2, noise: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    target = torch.rand(batch, 3, size, size)
    target = F.avg_pool2d(target, 3, 1, 1)  # some structure, like a photo
    output = (target + noise * torch.randn_like(target)).clamp(0, 1)
    return output, target


def reference_ssim(x: torch.Tensor, y: torch.Tensor) -> float:
    """Wang et al. 2004 written out: 11x11 Gaussian window (sigma 1.5), valid region, mean over channels."""
    coords = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-(coords**2) / (2 * 1.5**2))
    window = torch.outer(g, g) / torch.outer(g, g).sum()
    c1, c2 = 0.01**2, 0.03**2
    values = []
    for channel in range(x.shape[0]):
        a = x[channel].double()[None, None]
        b = y[channel].double()[None, None]
        w = window[None, None]
        mu_a, mu_b = F.conv2d(a, w), F.conv2d(b, w)
        var_a = F.conv2d(a * a, w) - mu_a**2
        var_b = F.conv2d(b * b, w) - mu_b**2
        cov = F.conv2d(a * b, w) - mu_a * mu_b
        ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
        values.append(ssim_map.mean().item())
    return sum(values) / len(values)


def test_psnr_matches_hand_computation() -> None:
    target = torch.zeros(1, 3, 16, 16)
    output = torch.full((1, 3, 16, 16), 0.1)  # MSE = 0.01 -> 20 dB
    assert psnr(output, target).item() == pytest.approx(20.0, abs=1e-4)
    output, target = _pair()
    mse = ((output - target) ** 2).mean(dim=(1, 2, 3))
    expected = [10 * math.log10(1 / m) for m in mse.tolist()]
    assert psnr(output, target).tolist() == pytest.approx(expected, abs=1e-4)
    assert rmse(output, target).tolist() == pytest.approx([255 * math.sqrt(m) for m in mse.tolist()], rel=1e-5)


def test_psnr_is_capped_for_identical_images() -> None:
    image = torch.rand(1, 3, 16, 16)
    assert psnr(image, image).item() == pytest.approx(100.0)


def test_psnr_y_channel_follows_basicsr() -> None:
    output, target = _pair(batch=1)

    def y(img: torch.Tensor) -> torch.Tensor:  # BasicSR rgb2ycbcr(y_only=True) on a 0-255 scale
        r, g, b = img[0, 0] * 255, img[0, 1] * 255, img[0, 2] * 255
        return 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0

    mse = ((y(output) - y(target)) ** 2).mean().item()
    assert psnr(output, target, y_channel=True).item() == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-3)


def test_ssim_matches_reference_implementation() -> None:
    output, target = _pair(size=40, batch=2)
    ours = ssim(output, target)
    for index in range(2):
        assert ours[index].item() == pytest.approx(reference_ssim(output[index], target[index]), abs=1e-5)
    assert ssim(target, target).tolist() == pytest.approx([1.0, 1.0], abs=1e-6)


def test_ms_ssim_matches_pytorch_msssim_at_full_scale() -> None:
    output, target = _pair(size=176, batch=2, noise=0.1)
    expected = pytorch_msssim.ms_ssim(output, target, data_range=1.0, size_average=False)
    assert ms_ssim_scales(176, 176) == 5
    assert torch.allclose(ms_ssim(output, target), expected, atol=1e-6)


def test_ms_ssim_on_small_images_uses_fewer_scales() -> None:
    assert [ms_ssim_scales(s, s) for s in (11, 20, 21, 40, 41, 96, 160, 161)] == [1, 1, 2, 2, 3, 4, 4, 5]
    output, target = _pair(size=16, batch=2, noise=0.2)  # one scale: non-negative SSIM
    expected = pytorch_msssim.ssim(output, target, data_range=1.0, size_average=False).clamp_min(0)
    assert torch.allclose(ms_ssim(output, target), expected, atol=1e-6)
    slight, target = _pair(size=64, noise=0.02)
    strong = (target + 0.2 * torch.randn_like(target)).clamp(0, 1)
    assert (ms_ssim(slight, target) > ms_ssim(strong, target)).all()
    assert ms_ssim(target, target).tolist() == pytest.approx([1.0, 1.0], abs=1e-5)


def test_masked_psnr_separates_defects_from_clean_skin() -> None:
    target = torch.zeros(1, 3, 16, 16)
    output = target.clone()
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., :4, :4] = 1.0
    output[..., :4, :4] = 0.1  # error only inside the mask: MSE 0.01 there
    assert masked_psnr(output, target, mask, inside=True).item() == pytest.approx(20.0, abs=1e-4)
    assert masked_psnr(output, target, mask, inside=False).item() == pytest.approx(100.0)
    assert math.isnan(masked_psnr(output, target, torch.zeros_like(mask), inside=True).item())


def test_compute_metrics_row_and_score() -> None:
    output, target = _pair(size=32)
    mask = (torch.rand(2, 1, 32, 32) > 0.8).float()
    row = compute_metrics(output, target, mask=mask, y_channel=True)
    assert set(row) == {"psnr", "psnr_y", "ssim", "ms_ssim", "rmse", "score", "psnr_mask", "psnr_clean"}
    assert all(value.shape == (2,) for value in row.values())
    assert torch.allclose(row["score"], 0.5 * row["psnr"] / 100 + 0.5 * row["ms_ssim"])
    assert competition_score(torch.tensor([40.0]), torch.tensor([0.9])).item() == pytest.approx(0.65)
    assert "lpips" not in compute_metrics(output, target)


def test_compute_metrics_passes_unit_range_images_to_lpips() -> None:
    seen = []

    class FakeLpips(torch.nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            seen.append((a.min().item(), a.max().item()))
            return (a - b).abs().mean(dim=(1, 2, 3))

    output = torch.ones(1, 3, 16, 16)
    target = torch.zeros(1, 3, 16, 16)
    row = compute_metrics(output, target, lpips_model=FakeLpips())
    assert seen == [(1.0, 1.0)]  # build_lpips's networks take [0, 1] images (they normalise inside)
    assert row["lpips"].item() == pytest.approx(1.0)


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(DataError, match="differ in shape"):
        psnr(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 17))
    with pytest.raises(DataError, match="at least 11x11"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(DataError, match=r"\[N,3,H,W\]"):
        psnr(torch.rand(3, 16, 16), torch.rand(3, 16, 16))
