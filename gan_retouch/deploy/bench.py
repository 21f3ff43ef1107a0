"""Entry point of `gan-retouch bench` (lands with issue #8)."""

from __future__ import annotations

from typing import Any

from gan_retouch.errors import NotImplementedYet


def run_bench(options: dict[str, Any]) -> int:
    """Not implemented yet: fails with a clear message instead of pretending."""
    raise NotImplementedYet("`gan-retouch bench` is not implemented yet (issue #8)")
