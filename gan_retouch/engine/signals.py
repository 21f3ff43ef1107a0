"""Stopping a run cleanly: Ctrl-C (SIGINT) and SIGTERM (how Slurm and Kubernetes stop a job) ask for a save."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def install_stop_handlers(request_stop: Callable[[int], None]) -> dict[int, Any]:
    """Call ``request_stop(signum)`` on SIGINT and SIGTERM instead of dying; returns the handlers replaced (none
    outside the main thread, where Python cannot set handlers)."""
    previous: dict[int, Any] = {}
    try:
        for signum in STOP_SIGNALS:
            previous[signum] = signal.signal(signum, lambda number, frame: request_stop(number))
    except ValueError:  # not the main thread
        pass
    return previous


def restore_handlers(previous: dict[int, Any]) -> None:
    """Put back the handlers ``install_stop_handlers`` replaced."""
    for signum, handler in previous.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
