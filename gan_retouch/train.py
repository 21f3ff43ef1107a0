"""`gan-retouch train`: the recipe's generator (and discriminator) trained by the engine, validated by evaluate/."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from gan_retouch.engine.loop import TrainingLoop
from gan_retouch.engine.model import RetouchModel
from gan_retouch.evaluate.validation import Validator


def build_training(options: dict[str, Any], command_line: Collection[str] | None = None) -> TrainingLoop:
    """The loop of a plain training run: a ``RetouchModel`` validated on the data's validation split.
    ``command_line``: the option keys the command line set (a resumed run keeps its own schedule for the rest)."""
    return TrainingLoop(options, RetouchModel, Validator.from_options, command_line)


def run_train(options: dict[str, Any], command_line: Collection[str] | None = None) -> int:
    """Train, then report against the identity baseline (torchrun runs it once per GPU)."""
    build_training(options, command_line).fit()
    return 0
