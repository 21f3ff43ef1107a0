"""Entry point of `gan-retouch train`: one Trainer over the resolved options (torchrun for several GPUs)."""

from __future__ import annotations

from typing import Any

from gan_retouch.engine.trainer import Trainer


def run_training(options: dict[str, Any]) -> int:
    """Train the recipe's generator (and discriminator) and report against the identity baseline."""
    Trainer(options).fit()
    return 0
