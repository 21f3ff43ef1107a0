"""Subtle mode matches real professional retouching: 0.4-1.7 % of pixels change by > 8/255, 43-48 dB identity."""

import pytest
import torch

from gan_retouch.synth import synthesize_pair
from gan_retouch.synth.synthetic import changed_share, identity_psnr


@pytest.fixture(autouse=True)
def _one_thread():
    """Generation is many small ops: one thread, as in a loader worker (two threads crawl on a loaded CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(("size", "count"), [(96, 6), (128, 6), (256, 2)])
def test_subtle_pairs_have_the_statistics_of_real_retouching(size: int, count: int) -> None:
    for index in range(count):
        pair = synthesize_pair(index, size, mode="subtle", clean_fraction=0.0)
        psnr, share = identity_psnr(pair["input"], pair["target"]), changed_share(pair["input"], pair["target"])
        assert 43.0 <= psnr <= 48.0, f"pair {index} at {size} px: identity PSNR {psnr:.2f} dB"
        assert 0.004 <= share <= 0.017, f"pair {index} at {size} px: {share:.2%} of pixels changed by > 8/255"


def test_standard_mode_is_stronger_than_subtle() -> None:
    standard = [identity_psnr(p["input"], p["target"]) for p in
                (synthesize_pair(i, 128, clean_fraction=0.0) for i in range(6))]
    assert min(standard) < 43.0  # the wide family includes clearly visible defects
