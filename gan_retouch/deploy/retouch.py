"""Entry point of `gan-retouch retouch` (lands with issue #7)."""

from __future__ import annotations

from typing import Any

from gan_retouch.errors import NotImplementedYet


def run_retouch(options: dict[str, Any], inputs: list[str]) -> int:
    """Not implemented yet: fails with a clear message instead of pretending."""
    raise NotImplementedYet("`gan-retouch retouch` is not implemented yet (issue #7)")
