"""The run folder (checkpoints/<name>/): never clobbered, one live run at a time, resumable from itself alone.

A new run needs an empty (or absent) folder; ``--resume`` continues the run in it. A lock file held with
``fcntl.flock`` for the life of the process refuses a second live run in the same folder; the kernel releases it
when the process dies, however it dies. The run name is one plain folder name, so the folder stays inside
``checkpoints_root``. Nothing is written until the loop has accepted the run (``begin``): a refused resume (a
complete run) leaves the folder as it was.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any

from gan_retouch.config import Options, check_run_name, save_options
from gan_retouch.engine.checkpoint import load_checkpoint
from gan_retouch.errors import ConfigError
from gan_retouch.fileio import atomic_write, ensure_writable_dir, remove_stale_temps

LOCK_NAME = ".lock"
FRESH_VALUES = (None, False, "", "none")


class RunFolder:
    """One run's folder: its policy on start and resume, its lock, and where its files go."""

    def __init__(self, options: Options, is_main: bool) -> None:
        self.path = Path(options["checkpoints_root"]) / check_run_name(options["name"])
        self.options = options
        self.is_main = is_main
        self._lock_handle: Any = None

    def open(self) -> dict[str, Any] | None:
        """Check the folder may be used and lock it; returns the checkpoint to resume, if any.

        Only rank 0 locks and decides whether the folder may be used (the other ranks would otherwise see the
        files rank 0 has just written and refuse the run); under DDP the loop calls this on rank 0 alone and gives
        its answer to the other ranks, whose nodes may have no copy of the folder.
        """
        if self.is_main:
            ensure_writable_dir(self.path, "run folder")
            self._lock()
        try:
            return self._resume_state()
        except BaseException:
            self.close()
            raise

    def begin(self, options: Options, resumed_step: int | None) -> None:
        """Rank 0, once the run is accepted: remove temp files of killed saves, drop the log records a resumed
        run will write again (those past ``resumed_step``), and save ``options`` (the run's, as it trains)."""
        self.options = options
        if not self.is_main:
            return
        remove_stale_temps(self.path)
        if resumed_step is not None:
            drop_log_records_after(self.path / "log.jsonl", resumed_step)
        save_options(options, self.path / "options.yaml")

    def will_resume(self) -> bool:
        """Whether ``open`` will return a checkpoint to resume, decided from the options and the folder alone
        (nothing read or written): a resumed run's networks start from it, never from ``--init``."""
        resume = self.options["train"]["resume"]
        if resume in FRESH_VALUES:
            return False
        return resume != "auto" or (self.path / "latest.pt").exists()

    def discard_unsaved(self) -> None:
        """Rank 0, a new run that failed before saving any checkpoint: remove what it wrote (options.yaml, logs,
        samples), so that the same name can be used again. The folder held nothing else when the run began."""
        if not self.is_main or not self.path.is_dir() or any(self.path.glob("*.pt")):
            return
        for entry in self.path.iterdir():
            if entry.name == LOCK_NAME:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

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


def _record_step(line: str) -> int | None:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    step = record.get("step") if isinstance(record, dict) else None
    return step if isinstance(step, int) else None


def drop_log_records_after(log: Path, step: int) -> int:
    """Rewrite ``log`` (log.jsonl) atomically without the records past ``step``, and without a line torn by a
    killed process: a resumed run logs those steps again. Returns how many lines were dropped."""
    if not log.is_file():
        return 0
    lines = log.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if (found := _record_step(line)) is not None and found <= step]
    if len(kept) != len(lines):
        atomic_write(log, "".join(f"{line}\n" for line in kept).encode("utf-8"))
    return len(lines) - len(kept)
