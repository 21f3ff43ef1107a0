"""Validation's sample overview: large photos are scaled down in the grid, never written at full size there."""

import torch

from gan_retouch.evaluate.validation import GRID_SIDE, overview


def test_overview_scales_large_photos_down_and_keeps_small_ones() -> None:
    photo = torch.rand(3, 3 * GRID_SIDE, 2 * GRID_SIDE)
    small = overview(photo)
    assert small.shape == (3, GRID_SIDE, 2 * GRID_SIDE // 3) and 0 <= small.min() and small.max() <= 1
    torch.testing.assert_close(small.mean(), photo.mean(), atol=0.01, rtol=0)  # the same picture, smaller
    tiny = torch.rand(3, 40, 60)
    assert overview(tiny) is tiny
