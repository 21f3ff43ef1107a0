"""`gan-retouch train`: the recipe's generator (and discriminator) trained by the engine, validated by evaluate/."""

from __future__ import annotations

from typing import Any

from gan_retouch.engine.loop import TrainingLoop
from gan_retouch.engine.model import RetouchModel
from gan_retouch.evaluate.validation import Validator


def build_training(options: dict[str, Any]) -> TrainingLoop:
    """The loop of a plain training run: a ``RetouchModel`` validated on the data's validation split."""
    return TrainingLoop(options, RetouchModel, Validator.from_options)


def run_training(options: dict[str, Any]) -> int:
    """Train, then report against the identity baseline (torchrun runs it once per GPU)."""
    build_training(options).fit()
    return 0
