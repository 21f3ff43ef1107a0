"""Child processes of benchmarks/gpu_check.py: started in their own process group, killed with all they started.

A timed-out child must not outlive its row: torchrun starts its workers in sessions of their own
(``start_new_session``), so killing the child's process group alone leaves them training beside the later rows.
``kill_tree`` therefore collects every descendant first (from /proc, before the kill reparents them), then kills
each one and each one's process group. Without /proc (not Linux) only the child's own group is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

PROC = Path("/proc")


def parent_pids() -> dict[int, int]:
    """pid -> parent pid of every process /proc lists (empty without /proc)."""
    parents = {}
    for entry in PROC.glob("[0-9]*/stat") if PROC.is_dir() else ():
        try:
            text = entry.read_text()
        except OSError:  # the process ended while we looked
            continue
        fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) ": state, ppid, ...
        parents[int(entry.parent.name)] = int(fields[1])
    return parents


def descendants(pid: int) -> list[int]:
    """Every process started by ``pid``, directly or not, whatever its session."""
    children: dict[int, list[int]] = {}
    for child, parent in parent_pids().items():
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid``, its process group, and every descendant with its own process group."""
    for target in [pid, *descendants(pid)]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(os.getpgid(target), signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(target, signal.SIGKILL)


def visible_devices(index: int | None, current: str | None) -> str | None:
    """``CUDA_VISIBLE_DEVICES`` for a child that should see only GPU ``index`` of this process's numbering.

    Under Slurm (or any launcher) the variable is already set, and index N means its N-th entry, not the
    machine's GPU N; None: leave the variable as it is."""
    if index is None:
        return current
    entries = [entry.strip() for entry in current.split(",")] if current else []
    if not entries:
        return str(index)
    if index >= len(entries):
        raise ValueError(f"cuda:{index} asked for, but CUDA_VISIBLE_DEVICES={current} shows {len(entries)} GPU(s)")
    return entries[index]


def run_child(args: list[str], env: dict[str, str], timeout: float, output: Path | None = None,
              on_poll: Callable[[], None] | None = None, poll_s: float = 0.5) -> subprocess.CompletedProcess:
    """Run ``args`` in a new session; at ``timeout`` seconds kill it with everything it started and raise
    subprocess.TimeoutExpired. ``output``: a file for its stdout and stderr (else they are captured and
    returned); ``on_poll``: called every ``poll_s`` seconds while it runs (needs ``output``)."""
    sink = open(output, "ab") if output else subprocess.PIPE  # noqa: SIM115 (closed below)
    process = subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT if output else subprocess.PIPE,
                               start_new_session=True)
    ends = time.monotonic() + max(timeout, 0.1)
    try:
        if on_poll is None:
            stdout, stderr = process.communicate(timeout=max(timeout, 0.1))
        else:
            stdout = stderr = None
            while process.poll() is None:
                if time.monotonic() > ends:
                    raise subprocess.TimeoutExpired(args, timeout)
                on_poll()
                time.sleep(poll_s)
    except BaseException:  # the time limit, or Ctrl-C / SIGTERM of the check: the child's tree goes too
        kill_tree(process.pid)
        process.wait()
        raise
    finally:
        if output:
            sink.close()
    return subprocess.CompletedProcess(args, process.returncode, (stdout or b"").decode(errors="replace"),
                                       (stderr or b"").decode(errors="replace"))


def exit_with_parent(poll_s: float = 0.5) -> None:
    """In a child: when the parent dies (SIGKILL at a run's limit), kill this process's tree and exit."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        for child in descendants(os.getpid()):
            kill_tree(child)
        os._exit(137)

    threading.Thread(target=watch, daemon=True).start()
