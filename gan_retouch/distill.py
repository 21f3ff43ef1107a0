"""Entry point of `gan-retouch distill` (lands with issue #6)."""

from __future__ import annotations

from typing import Any

from gan_retouch.errors import NotImplementedYet


def run_distillation(options: dict[str, Any]) -> int:
    """Not implemented yet: fails with a clear message instead of pretending."""
    raise NotImplementedYet("`gan-retouch distill` is not implemented yet (issue #6)")
