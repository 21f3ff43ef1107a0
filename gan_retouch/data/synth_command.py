"""Entry point of `gan-retouch synth` (lands with issue #3)."""

from __future__ import annotations

from typing import Any

from gan_retouch.errors import NotImplementedYet


def run_synth(options: dict[str, Any]) -> int:
    """Not implemented yet: fails with a clear message instead of pretending."""
    raise NotImplementedYet("`gan-retouch synth` is not implemented yet (issue #3)")
