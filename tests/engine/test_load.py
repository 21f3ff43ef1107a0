"""engine.load.load_model, the one front door of retouch, test, bench, export and the benchmarks: the network
and its plan with a command's options applied, checked against the network; EMA weights unless told not to."""

from pathlib import Path

import pytest
import torch

import gan_retouch.nets  # noqa: F401  (registers the generators)
from gan_retouch.engine.checkpoint import save_checkpoint
from gan_retouch.engine.load import load_model
from gan_retouch.errors import ConfigError
from gan_retouch.registry import GENERATORS

ARGS = {"width": 4, "depth": 1, "levels": 1, "edit_mask": True}
SAVED = {"work_size": 64, "coarse_pass": True, "edit_floor": 0.1, "strength": 1.0, "tile": 0, "tile_overlap": 64,
         "memory_mb": None, "precision": "fp32", "backend": "torch"}


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    plain, ema = (GENERATORS.build("student", **ARGS) for _ in range(2))
    with torch.no_grad():
        ema.head.bias.fill_(0.5)
    entry = {"name": "student", "args": ARGS, "state_dict": plain.state_dict()}
    return save_checkpoint({"kind": "train", "options": {}, "generator": entry, "generator_ema": ema.state_dict(),
                            "inference": SAVED}, tmp_path / "m.pt")


def test_the_saved_plan_with_the_settings_applied(checkpoint: Path) -> None:
    loaded = load_model(checkpoint, {"work_size": 0, "coarse_pass": None, "strength": 0.5, "tile": 160}, "retouch")
    assert (loaded.plan.work_size, loaded.plan.coarse_pass, loaded.plan.edit_floor) == (None, True, 0.1)
    assert (loaded.plan.strength, loaded.plan.tile) == (0.5, 160)
    assert loaded.info["plan"].work_size == 64  # the plan as saved stays in info
    assert loaded.source == str(checkpoint) and not loaded.network.training


def test_ema_weights_unless_told_not_to(checkpoint: Path) -> None:
    assert load_model(checkpoint, {}, "test").info["used_ema"]
    loaded = load_model(checkpoint, {"use_ema": False}, "test")
    assert not loaded.info["used_ema"] and float(loaded.network.head.bias.detach().abs().sum()) == 0.0


def test_settings_are_checked_against_the_network_and_device(checkpoint: Path) -> None:
    with pytest.raises(ConfigError, match="retouch.precision=fp16 needs a CUDA device"):
        load_model(checkpoint, {"precision": "fp16"}, "retouch", torch.device("cpu"))
    with pytest.raises(ConfigError, match="export.edit_floor"):
        load_model(checkpoint, {"edit_floor": 1.5}, "export")
