"""Peak memory of `gan-retouch test` per pixel of the scored image.

Each run is a fresh ``python -m gan_retouch test`` process on a one-pair folder, watched by a small wrapper process
that reads its peak resident memory (``ru_maxrss`` of its child). The same command on a small pair gives the
fixed part (Python, torch, the networks); what the large pair adds, divided by its pixels, is the cost per pixel:

    python benchmarks/bench_test_memory.py --checkpoint builtin --side 4000x3000

The pairs are generated (smooth gradients with a little noise, a shifted copy as the source), so nothing is
downloaded. tests/evaluate/test_test_memory.py runs the same measurement on a tiny network.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

BASELINE_SIDE = (64, 64)
WRAPPER = ("import json, resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
           "print(json.dumps({'rc': r.returncode, 'kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))")


def write_pair(folder: Path, width: int, height: int) -> Path:
    """A flat pair folder (source/ + target/) of one ``width`` x ``height`` pair; returns ``folder``."""
    rng = np.random.default_rng(0)
    rows, cols = np.linspace(0, 1, height, dtype=np.float32)[:, None], np.linspace(0, 1, width, dtype=np.float32)
    for sub, shift in (("target", 0.0), ("source", 0.04)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        image = np.empty((height, width, 3), dtype=np.uint8)
        for channel, (a, b) in enumerate(((0.6, 0.3), (0.3, 0.5), (0.2, 0.2))):
            noise = rng.integers(0, 6, size=(height, width), dtype=np.uint8)
            value = (a * rows + b * cols + shift) * 200.0
            image[..., channel] = np.clip(value, 0, 249).astype(np.uint8) + noise
        Image.fromarray(image).save(folder / sub / "pair.png", compress_level=1)
    return folder


def peak_kb(argv: list[str], env: dict[str, str] | None = None) -> int:
    """Peak resident memory (KiB) of ``argv`` run as a child of a fresh wrapper process; raises when it fails."""
    done = subprocess.run([sys.executable, "-c", WRAPPER, *argv], capture_output=True, text=True, env=env)
    lines = done.stdout.strip().splitlines()
    report = json.loads(lines[-1]) if lines else {"rc": done.returncode}
    if report["rc"] != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({report['rc']}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return int(report["kb"])


def test_command(checkpoint: str, data: Path, results: Path, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "gan_retouch", "test", "--checkpoint", checkpoint, "--data", str(data),
            "--device", "cpu", "--set", f"results_root={results}", "test.lpips=false", *extra]


def bytes_per_pixel(checkpoint: str, width: int, height: int, work: Path, extra: list[str] = (),
                    env: dict[str, str] | None = None) -> dict[str, float]:
    """Peak memory of `test` on a ``width`` x ``height`` pair and on a small one, and the cost per pixel."""
    peaks = {}
    for name, (w, h) in (("small", BASELINE_SIDE), ("large", (width, height))):
        data = write_pair(work / f"pairs_{name}", w, h)
        peaks[name] = peak_kb(test_command(checkpoint, data, work / f"results_{name}", list(extra)), env)
    pixels = width * height - BASELINE_SIDE[0] * BASELINE_SIDE[1]
    return {"small_mb": peaks["small"] / 1024, "large_mb": peaks["large"] / 1024,
            "bytes_per_pixel": (peaks["large"] - peaks["small"]) * 1024 / pixels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="builtin")
    parser.add_argument("--side", default="4000x3000", help="WIDTHxHEIGHT of the large pair")
    parser.add_argument("--record", action="store_true", help="record the figures in benchmarks/results")
    parser.add_argument("--note", action="append", default=[], help="a note for the record (repeatable)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.side.lower().split("x"))
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    with tempfile.TemporaryDirectory() as work:
        figures = bytes_per_pixel(args.checkpoint, width, height, Path(work), env=env)
    print(json.dumps(figures))
    if args.record:
        from results import record, table

        row = [args.checkpoint, f"{width}x{height}", round(figures["small_mb"]), round(figures["large_mb"]),
               round(figures["bytes_per_pixel"], 1)]
        record("bench_test_memory", [table("peak resident memory of `gan-retouch test` on one pair",
                                           ["checkpoint", "pair", "64x64 pair MB", "large pair MB", "bytes / pixel"],
                                           [row])], title=f"bench_test_memory {args.checkpoint} {args.side}",
               notes=args.note, command=f"python benchmarks/bench_test_memory.py --checkpoint {args.checkpoint} "
                                         f"--side {args.side} --record")  # the notes are shown as notes


if __name__ == "__main__":
    main()
