"""The metrics of one pair accumulated band by band equal the whole-image metrics (up to float rounding)."""

import pytest
import torch

import gan_retouch.evaluate.bands as bands
from gan_retouch.evaluate.bands import Pixels
from gan_retouch.evaluate.lpips_bands import banded_lpips
from gan_retouch.evaluate.streamed import streamed_metrics
from gan_retouch.losses.pretrained import build_lpips
from gan_retouch.metrics import compute_metrics


@pytest.fixture(scope="module")
def lpips_random() -> torch.nn.Module:
    with pytest.warns(UserWarning, match="RANDOM weights"):
        return build_lpips("alex", weights="random").eval()


@pytest.mark.parametrize("height,width", [(211, 173), (200, 190), (33, 40), (12, 300)])
def test_banded_metrics_are_the_whole_image_metrics(height: int, width: int, lpips_random, monkeypatch) -> None:
    monkeypatch.setattr(bands, "BAND_PIXELS", 4000)  # many bands, odd and even sizes
    monkeypatch.setattr(bands, "MIN_BAND_ROWS", 4)
    generator = torch.Generator().manual_seed(height)
    target = (torch.rand(3, height, width, generator=generator) * 255).round().to(torch.uint8)  # kept as decoded
    output = (target.float() / 255 + 0.05 * torch.randn(3, height, width, generator=generator)).clamp(0, 1)
    mask = torch.rand(1, height, width, generator=generator)
    lpips = lpips_random if min(height, width) > 60 else None  # AlexNet needs larger images
    whole = compute_metrics(output[None], target[None].float() / 255, mask[None], lpips, y_channel=True)
    streamed = streamed_metrics(Pixels(output), Pixels(target, lambda part: part.float() / 255), Pixels(mask),
                                lpips, y_channel=True)
    assert list(streamed) == list(whole)
    for name, value in whole.items():
        assert streamed[name] == pytest.approx(float(value[0]), rel=2e-6, abs=1e-9), name


def test_banded_lpips_needs_the_alexnet_lpips() -> None:
    with pytest.raises(ValueError, match="AlexNet LPIPS"):
        banded_lpips(torch.nn.Identity(), Pixels(torch.rand(3, 8, 8)), Pixels(torch.rand(3, 8, 8)))
