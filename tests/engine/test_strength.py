"""inference.strength: auto (formerly train.strength): the edit strength chosen on held-out pairs or regions and saved in the model's plan."""

import json
from pathlib import Path

import pytest
import torch
from engine_utils import tiny_options
from torch import nn

from gan_retouch.cli import main
from gan_retouch.engine.checkpoint import load_generator
from gan_retouch.engine.strength import choose_strength
from gan_retouch.errors import ConfigError
from gan_retouch.imaging import save_image
from gan_retouch.inference.plan import InferencePlan
from gan_retouch.inference.strength import STRENGTHS, best_strength, strength_gains
from gan_retouch.metrics import psnr
from gan_retouch.train import build_training as Trainer


def test_gains_match_the_psnr_of_the_blended_output() -> None:
    generator = torch.Generator().manual_seed(0)
    x, output, target = (torch.rand(1, 3, 20, 24, generator=generator) for _ in range(3))
    region = (torch.rand(1, 1, 20, 24, generator=generator) > 0.5).float()
    gains = strength_gains(x, output, target, region)
    keep = region.expand_as(x).bool()

    def mse(image: torch.Tensor) -> float:
        return float(((image - target)[keep] ** 2).mean())

    for strength, gain in zip(STRENGTHS, gains, strict=True):
        blended = x + strength * (output - x)
        assert gain == pytest.approx(10 * torch.log10(torch.tensor(mse(x) / mse(blended))).item(), abs=1e-6)
    assert strength_gains(x, output, target)[-1] == pytest.approx(float(psnr(output, target) - psnr(x, target)),
                                                                   abs=1e-4)


def test_no_helpful_strength_gives_zero() -> None:
    assert best_strength([[0.0, -0.1, -0.5], [0.0, -0.2, -0.1]], (0.0, 0.5, 1.0)) == (0.0, 0.0)


def test_the_pair_that_gains_least_decides_not_the_mean() -> None:
    strengths = (0.0, 0.5, 1.0)
    # the mean is highest at 1 (+0.30), but the second pair gains most at 0.5: 0.5, with the mean gain there
    assert best_strength([[0.0, 0.3, 0.5], [0.0, 0.2, 0.1]], strengths) == (0.5, pytest.approx(0.25))
    # a mean of +0.1 at 0.5 would make the second pair worse than the identity: nothing is applied
    assert best_strength([[0.0, 0.3, 0.1], [0.0, -0.1, -0.2]], strengths) == (0.0, 0.0)


class Scaled(nn.Module):
    """A 'generator' that multiplies its input."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


class Pairs:
    regions = False

    def __init__(self, factor: float) -> None:
        generator = torch.Generator().manual_seed(1)
        self.items = [{"input": x, "target": x * factor, "name": f"p{i}"}
                      for i, x in enumerate(torch.rand(2, 3, 16, 16, generator=generator))]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]


def test_an_over_edit_is_scaled_back_and_a_wrong_edit_is_switched_off() -> None:
    over = choose_strength(Scaled(0.6), InferencePlan(), Pairs(0.8), torch.device("cpu"))
    assert over.strength == 0.5 and over.gain > 10 and over.full_gain < over.gain  # half of -0.4 x is -0.2 x
    wrong = choose_strength(Scaled(1.2), InferencePlan(), Pairs(0.8), torch.device("cpu"))
    assert wrong.strength == 0.0 and wrong.gain == 0.0 and wrong.full_gain < 0
    assert wrong.losing == ("p0", "p1")
    assert "worse at every strength: p0, p1" in wrong.message("latest.pt")


def pairs(root: Path, count: int) -> Path:
    generator = torch.Generator().manual_seed(0)
    for index in range(count):
        target = torch.rand(3, 72, 80, generator=generator)
        save_image((target * 0.9).clamp(0, 1), root / "source" / f"p{index}.png")
        save_image(target, root / "target" / f"p{index}.png")
    return root


def finetune_options(tmp_path: Path, root: Path, *items: str) -> dict:
    return tiny_options(tmp_path, "data.source=folder", f"data.root={root}", "data.split_ratio=[1,0,0]",
                        "data.crop=16", "data.alignment=off", "data.holdout=auto", "inference.strength=auto",
                        "val.split=train", "model.discriminator.name=null", "losses.gan=null", *items)


@pytest.mark.parametrize("count", [1, 5])
def test_one_pair_trains_and_the_chosen_strength_is_saved_in_the_plan(tmp_path, count) -> None:
    trainer = Trainer(finetune_options(tmp_path, pairs(tmp_path / "pairs", count)))
    trainer.fit()
    metrics = json.loads((trainer.run_dir / "metrics.json").read_text())
    assert metrics["strength"] in STRENGTHS and metrics["holdout_gain_db"] >= 0
    assert ("cell" in metrics["holdout"]) == (count == 1)
    assert len(metrics["holdout_pairs_db"]) == 1  # one pair held out of 5; one pair scored on its cells
    for name in ("latest.pt", "best.pt"):
        _, info = load_generator(trainer.run_dir / name)
        assert info["plan"].strength == metrics["strength"]


def test_a_fixed_strength_is_saved_and_auto_needs_a_holdout(tmp_path) -> None:
    root = pairs(tmp_path / "pairs", 2)
    trainer = Trainer(finetune_options(tmp_path, root, "inference.strength=0.4", "data.holdout=none", "name=fixed"))
    trainer.fit()
    assert load_generator(trainer.run_dir / "latest.pt")[1]["plan"].strength == 0.4
    results = tmp_path / "results"
    assert main(["test", "--checkpoint", str(trainer.run_dir / "latest.pt"), "--data", str(root), "--split", "train",
                 "--device", "cpu", "--set", f"results_root={results}", "test.lpips=false"]) == 0
    summary = json.loads(next(results.rglob("metrics.json")).read_text())["summary"]
    assert any("(strength 0.4)" in label for label in summary)  # test scores the model at its saved strength
    with pytest.raises(ConfigError, match="inference.strength=auto chooses the edit strength"):
        Trainer(finetune_options(tmp_path, root, "data.holdout=none", "name=refused"))
    assert not (tmp_path / "refused").exists()
