"""The backend choice of ``backend: auto``, remembered per model file and machine.

Timing the candidate backends on a probe image costs a few seconds, and its answer only changes when the model
file, its ONNX export, the machine, the thread count or torch does. So the fastest candidate is stored in a
small JSON file, ``$XDG_CACHE_HOME/gan-retouch/backend-probes.json`` (``~/.cache/...`` when the variable is not
set), keyed by all of those; the next run of the same model on the same machine builds that backend at once.
Writes are atomic (``fileio.atomic_write``); the file keeps the ``MAX_ENTRIES`` most recent choices. A cache that
cannot be read or written is reported in one line and the run goes on probing.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from gan_retouch.console import console
from gan_retouch.errors import GanRetouchError
from gan_retouch.fileio import atomic_write

CACHE_NAME = "backend-probes.json"
MAX_ENTRIES = 200


def cache_path() -> Path:
    """Where the choices are stored: ``$XDG_CACHE_HOME/gan-retouch/`` or ``~/.cache/gan-retouch/``."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "gan-retouch" / CACHE_NAME


def machine(device: torch.device) -> str:
    """The machine, as far as inference speed goes: host, CPU model and count, threads, GPU."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            cpu = next((line.split(":", 1)[1].strip() for line in stream if line.startswith("model name")), cpu)
    except OSError:  # not Linux: platform's answer stands
        pass
    gpu = f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    return f"{platform.node()}: {cpu} x{os.cpu_count()}, {torch.get_num_threads()} threads{gpu}"


def probe_key(checkpoint: str, export: Path | None, device: torch.device, precision: str,
              candidates: list[str]) -> dict[str, Any]:
    """Everything a stored choice depends on."""
    source = Path(checkpoint).resolve()
    stat = source.stat()
    key: dict[str, Any] = {"checkpoint": str(source), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                           "machine": machine(device), "device": str(device), "torch": torch.__version__,
                           "precision": precision, "candidates": candidates}
    if export is not None:
        key["export"] = [str(export.resolve()), export.stat().st_mtime_ns]
    return key


def _digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        console.print(f"[yellow]note[/] cannot read the backend cache {path} ({exc}); probing again")
        return {}
    return entries if isinstance(entries, dict) else {}


def cached_choice(key: dict[str, Any]) -> str | None:
    """The candidate stored for ``key``, or None."""
    entry = _read(cache_path()).get(_digest(key))
    choice = entry.get("choice") if isinstance(entry, dict) else None
    return choice if choice in key["candidates"] else None


def store_choice(key: dict[str, Any], choice: str, timings_ms: dict[str, float]) -> None:
    """Remember ``choice`` (with the probe's timings) for ``key``; a write failure is reported, not raised."""
    path = cache_path()
    entries = _read(path)
    entries[_digest(key)] = {"choice": choice, "timings_ms": timings_ms, "key": key,
                             "written": datetime.now().isoformat(timespec="seconds")}
    newest = sorted(entries.items(), key=lambda item: str(item[1].get("written", "")))[-MAX_ENTRIES:]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(dict(newest), indent=1).encode())
    except (OSError, GanRetouchError) as exc:
        console.print(f"[yellow]note[/] cannot save the backend choice to {path}: {exc}")
