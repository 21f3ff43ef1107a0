"""Entry point of `gan-retouch train` (lands with issue #5)."""

from __future__ import annotations

from typing import Any

from gan_retouch.errors import NotImplementedYet


def run_training(options: dict[str, Any]) -> int:
    """Not implemented yet: fails with a clear message instead of pretending."""
    raise NotImplementedYet("`gan-retouch train` is not implemented yet (issue #5)")
