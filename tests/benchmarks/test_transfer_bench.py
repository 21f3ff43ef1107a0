"""benchmarks/bench_transfer.py: the scores it reports for an identity model and a model that repaints."""

import math
from pathlib import Path

import pytest
import torch
from benchmark_scripts import benchmark_script
from PIL import Image

import gan_retouch.nets  # noqa: F401  (registers the generators)
from gan_retouch.registry import GENERATORS


@pytest.fixture(scope="module")
def bench():
    with benchmark_script("bench_transfer") as module:
        yield module


def pair() -> dict[str, torch.Tensor]:
    target = torch.rand(3, 24, 24) * 0.5 + 0.25
    source = target.clone()
    source[:, 8:12, 8:12] += 0.2  # the defect
    mask = torch.zeros(1, 24, 24)
    mask[:, 8:12, 8:12] = 1.0
    return {"input": source, "target": target, "mask": mask}


class Brighten(torch.nn.Module):
    """A model that repaints every pixel a little: the harm the benchmark must show."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + 4 / 255).clamp(0, 1)


def test_identity_model_scores_exactly_the_identity_baseline(bench) -> None:
    identity = GENERATORS.build("autoretouch", ngf=4, n_blocks=1, edit_mask=True).eval()
    row = bench.score_pairs(identity, [pair(), pair()])
    assert row["psnr"] == pytest.approx(row["id"])
    assert row["psnr_in"] == pytest.approx(row["id_in"]) and row["psnr_in"] < 30
    assert row["id_out"] == pytest.approx(100.0)  # outside the defect the input is the target
    assert bench.score_clean(identity, {"flat": torch.full((3, 20, 20), 0.5)}) == {"flat": pytest.approx(100.0)}


def test_a_model_that_repaints_loses_outside_the_defects(bench) -> None:
    row = bench.score_pairs(Brighten(), [pair()])
    assert row["psnr_out"] == pytest.approx(-20 * math.log10(4 / 255), abs=0.1)  # 36.1 dB instead of 100
    clean = bench.score_clean(Brighten(), {"flat": torch.full((3, 20, 20), 0.5)})
    assert clean["flat"] == pytest.approx(-20 * math.log10(4 / 255), abs=0.1)


def test_crop_shows_input_output_diff_and_edit_map(bench, tmp_path: Path) -> None:
    model = GENERATORS.build("autoretouch", ngf=4, n_blocks=1, edit_mask=True).eval()
    photo = torch.rand(3, 512, 512)
    path = bench.write_crop(model, "astronaut", photo, tmp_path)
    width, height = Image.open(path).size
    assert height == 192 and width == 4 * 192 + 3 * 4  # four 100 % panels and their gaps
    small = bench.write_crop(model, "astronaut", photo[:, :100, :120], tmp_path)
    assert Image.open(small).size == (4 * 100 + 3 * 4, 100)  # a smaller photo: the largest crop that fits


def test_independent_blemishes_change_only_skin_and_are_deterministic(bench) -> None:
    clean = torch.full((3, 64, 64), 0.6)
    clean[0] += 0.2
    skin = torch.zeros(1, 64, 64)
    skin[:, 16:48, 16:48] = 1.0
    first = bench.independent_pair(clean, skin, seed=3)
    assert torch.equal(first["target"], clean)
    assert float(first["mask"].sum()) > 0  # something was drawn
    assert float(first["mask"][:, skin[0] == 0].sum()) == 0  # and only on skin
    assert torch.equal(first["input"], bench.independent_pair(clean, skin, seed=3)["input"])
    assert not torch.equal(first["input"], bench.independent_pair(clean, skin, seed=4)["input"])
    with pytest.raises(ValueError, match="no skin"):
        bench.independent_pair(clean, torch.zeros(1, 64, 64), seed=0)


def test_independent_blemishes_split_by_size(bench) -> None:
    clean = torch.full((3, 96, 96), 0.6)
    skin = torch.zeros(1, 96, 96)
    skin[:, 16:80, 16:80] = 1.0

    def area(share: float) -> float:
        return sum(float(bench.independent_pair(clean, skin, seed, (3, 3), large_share=share)["mask"].sum())
                   for seed in range(4))

    assert area(1.0) > 4 * area(0.0)  # three large blemishes cover far more skin than three small ones
    with pytest.raises(ValueError, match="large_share must be in"):
        bench.independent_pair(clean, skin, seed=0, large_share=1.5)
