"""The run folder (checkpoints/<name>/): never clobbered, one live run at a time, resumable from itself alone.

A new run needs an empty (or absent) folder; ``--resume`` continues the run in it. A lock file held with
``fcntl.flock`` for the life of the process refuses a second live run in the same folder; the kernel releases it
when the process dies, however it dies.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from gan_retouch.config import Options, save_options
from gan_retouch.engine.checkpoint import load_checkpoint
from gan_retouch.errors import ConfigError
from gan_retouch.fileio import ensure_writable_dir, remove_stale_temps

LOCK_NAME = ".lock"
FRESH_VALUES = (None, False, "", "none")


class RunFolder:
    """One run's folder: its policy on start and resume, its lock, and where its files go."""

    def __init__(self, options: Options, is_main: bool) -> None:
        self.path = Path(options["checkpoints_root"]) / str(options["name"])
        self.options = options
        self.is_main = is_main
        self._lock_handle: Any = None

    def open(self) -> dict[str, Any] | None:
        """Check the folder may be used, lock it, save options.yaml; returns the checkpoint to resume, if any.

        Only rank 0 writes and decides whether the folder may be used (the other ranks would otherwise see the
        files rank 0 has just written and refuse the run); every rank reads the same resume checkpoint.
        """
        if self.is_main:
            ensure_writable_dir(self.path, "run folder")
            self._lock()
        try:
            state = self._resume_state()
        except BaseException:
            self.close()
            raise
        if self.is_main:
            remove_stale_temps(self.path)
            save_options(self.options, self.path / "options.yaml")
        return state

    def _resume_state(self) -> dict[str, Any] | None:
        resume = self.options["train"]["resume"]
        latest = self.path / "latest.pt"
        if resume not in FRESH_VALUES and resume != "auto":
            return load_checkpoint(Path(str(resume)))
        if resume == "auto" and latest.exists():
            return load_checkpoint(latest)
        if self.is_main:
            self._refuse_existing_run()
        return None

    def _refuse_existing_run(self) -> None:
        if not self.path.is_dir():
            return
        leftovers = sorted(p.name for p in self.path.iterdir() if p.name != LOCK_NAME)
        if not leftovers:
            return
        holds = "latest.pt" if "latest.pt" in leftovers else ", ".join(leftovers[:4])
        hint = ("continue it with --resume, or" if "latest.pt" in leftovers
                else "it saved no checkpoint to resume from; delete the folder to reuse the name, or")
        raise ConfigError(f"{self.path} already holds a run ({holds}): {hint} start a new run with "
                          "--set name=<new name>; nothing was overwritten.")

    def _lock(self) -> None:
        handle = open(self.path / LOCK_NAME, "a+")  # noqa: SIM115  (held open for the life of the run)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise ConfigError(f"{self.path} is in use by a live run ({owner}); wait for it to finish, or train "
                              "under another name with --set name=<new name>") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._lock_handle = handle

    def close(self) -> None:
        """Release the lock (the kernel also does when the process ends)."""
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None
