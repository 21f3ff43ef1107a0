"""Entry point of `gan-retouch export` (lands with issue #8)."""

from __future__ import annotations

from typing import Any

from gan_retouch.errors import NotImplementedYet


def run_export(options: dict[str, Any]) -> int:
    """Not implemented yet: fails with a clear message instead of pretending."""
    raise NotImplementedYet("`gan-retouch export` is not implemented yet (issue #8)")
