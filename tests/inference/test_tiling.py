"""Tiled inference equals whole-image inference on a fully convolutional network; odd sizes round-trip."""

import pytest
import torch
from torch import nn

from gan_retouch.errors import ConfigError
from gan_retouch.inference.plan import InferencePlan, check_plan
from gan_retouch.inference.run import run_plan
from gan_retouch.inference.tiling import auto_tile, bytes_per_pixel, tile_spans
from gan_retouch.nets.base import Generator


def infer(net: torch.nn.Module, images: torch.Tensor, tile: int = 0, overlap: int = 32) -> torch.Tensor:
    """The network's output under a plan that only tiles."""
    return run_plan(InferencePlan(tile=tile, tile_overlap=overlap), net, images)


class TinyConvNet(Generator):
    """Fully convolutional, downsamples once (stride 2) like AutoRetouch; receptive field ~15 px."""

    stride = 2

    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Conv2d(3, 4, 3, stride=2, padding=1, padding_mode="reflect")
        self.mid = nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect")
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.out = nn.Conv2d(4 + 3, 3, 3, padding=1, padding_mode="reflect")

    def forward_padded(self, x, mask=None):
        features = self.up(torch.relu(self.mid(torch.relu(self.down(x)))))
        return torch.tanh(self.out(torch.cat([features, x], 1)))


@pytest.fixture
def net() -> TinyConvNet:
    return TinyConvNet().eval()


def test_tile_spans_cover_the_image_with_overlap_on_the_stride() -> None:
    assert tile_spans(50, 64, 8, 2) == [(0, 50)]
    spans = tile_spans(101, 32, 8, 4)
    assert spans[0][0] == 0 and spans[-1][1] == 101
    assert all(start % 4 == 0 for start, _ in spans)
    assert all(a_end - b_start >= 8 for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False))


@pytest.mark.parametrize("size", [(90, 150), (96, 96), (33, 161)])
def test_tiled_equals_untiled(net: TinyConvNet, size: tuple[int, int]) -> None:
    images = torch.rand(2, 3, *size)
    whole = infer(net, images)
    tiled = infer(net, images, tile=72, overlap=32)
    assert tiled.shape == whole.shape == images.shape
    assert (tiled - whole).abs().max().item() < 1e-5


def test_tiles_without_enough_overlap_differ(net: TinyConvNet) -> None:
    """The test above can fail: with no overlap, the tile borders see padding instead of the neighbours."""
    images = torch.rand(1, 3, 64, 64)
    assert (infer(net, images, tile=32, overlap=0) - infer(net, images)).abs().max().item() > 1e-3


def test_odd_sizes_round_trip(net: TinyConvNet) -> None:
    images = torch.rand(1, 3, 37, 51)
    output = infer(net, images)
    assert output.shape == images.shape
    assert output.min() >= 0 and output.max() <= 1


def test_bad_tiling_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"k.tile=32 must exceed twice k.tile_overlap=16"):
        check_plan(InferencePlan(tile=32, tile_overlap=16), "k")
    with pytest.raises(ConfigError, match=">= 0"):
        check_plan(InferencePlan(tile=-1, tile_overlap=0), "k")
    check_plan(InferencePlan(tile=0, tile_overlap=32), "k")
    check_plan(InferencePlan(tile=None, tile_overlap=32), "k")  # auto


def test_four_or_more_tiles_blend_without_seams(net: TinyConvNet) -> None:
    images = torch.rand(1, 3, 150, 140)
    assert len(tile_spans(150, 72, 32, 2)) * len(tile_spans(140, 72, 32, 2)) >= 4
    tiled, whole = infer(net, images, tile=72, overlap=32), infer(net, images)
    assert (tiled - whole).abs().max().item() < 1e-5


def test_fast_student_tiled_equals_untiled_with_enough_overlap() -> None:
    """The default inference network, small: its receptive radius (~45 px) fits in a quarter of a 192 px overlap."""
    from gan_retouch.nets.student_fast import FastStudent

    model = FastStudent(width=4, blocks=1, context=1).eval()
    torch.nn.init.normal_(model.head.weight, std=0.2)
    images = torch.rand(1, 3, 600, 520)
    tiled, whole = infer(model, images, tile=400, overlap=192), infer(model, images)
    assert (whole - images).abs().max() > 1e-2
    assert (tiled - whole).abs().max().item() < 1e-5


def test_auto_tile_only_when_the_image_does_not_fit(net: TinyConvNet) -> None:
    per_pixel = bytes_per_pixel(net)
    assert per_pixel > 4 * 3  # at least the image itself
    assert auto_tile(net, 100, 100, budget_bytes=per_pixel * 100 * 100) == 0
    tile = auto_tile(net, 4096, 4096, budget_bytes=per_pixel * 1024 * 1024, overlap=64)
    assert 256 <= tile <= 1024 and tile % 64 == 0
    assert auto_tile(net, 4096, 4096, budget_bytes=per_pixel * 1024 * 1024, batch=4) < tile
    assert auto_tile(net, 4096, 4096, budget_bytes=1.0) == 256  # never below the minimum tile
    assert auto_tile(net, 256, 200, budget_bytes=1.0) == 0  # fits the smallest tile: whole, not even measured
