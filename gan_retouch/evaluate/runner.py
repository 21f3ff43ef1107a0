"""Entry point of `gan-retouch test` (lands with issue #7)."""

from __future__ import annotations

from typing import Any

from gan_retouch.errors import NotImplementedYet


def run_test(options: dict[str, Any]) -> int:
    """Not implemented yet: fails with a clear message instead of pretending."""
    raise NotImplementedYet("`gan-retouch test` is not implemented yet (issue #7)")
