"""Training step time on large pairs against the same pairs stored small: does training wait on data?

Builds N synthetic pairs at 1024 px (`gan-retouch synth --size 1024`, train and val splits) and the same pairs
resized to 256 px, then trains the quick-start recipe for a few steps on each with ``data.source=folder
data.crop=128``, each run in its own process as a user would start it. Prints the per-step times the run logs
(log.jsonl: ``sec_per_step`` and, where the code logs it, ``data_time``; the first log window, the warm-up, is
left out), the whole run's wall time, and the ratio 1024 / 256. Runs alternate between the sizes and repeat, so
the spread on a shared machine shows.

    python benchmarks/bench_real_loading.py [--pairs 8] [--steps 40] [--repeats 3] [--work DIR]
        [--set KEY=VALUE ...]   (extra options for every run, e.g. data.cache=false)
    python benchmarks/bench_real_loading.py --prepare   (also runs on `gan-retouch prepare` output of the 1024 set)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

import gan_retouch

SMALL = 256


def run_cli(args: list[str], work: Path) -> float:
    """Run ``python -m gan_retouch ARGS`` in a fresh process, on the code this script imports; its wall time in s.

    The child runs in ``work``: Python puts the current folder first on the path, so a child started in a source
    tree would import that tree instead of the code under test.
    """
    code_root = str(Path(gan_retouch.__file__).resolve().parents[1])
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": code_root}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "gan_retouch", *args], capture_output=True, text=True, env=env,
                            cwd=work)
    if result.returncode != 0:
        raise SystemExit(f"gan-retouch {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return time.perf_counter() - started


def build_sets(work: Path, pairs: int) -> dict[str, Path]:
    """``work/1024`` from the synthesizer and ``work/256``, the same files resized (Lanczos), PNG."""
    large, small = work / "1024", work / str(SMALL)
    if not large.is_dir():
        run_cli(["synth", "--out", str(large), "--count", str(pairs), "--size", "1024",
                 "--set", "synth.splits=[train,val]"], work)
    if not small.is_dir():
        for path in sorted(large.rglob("*.png")):
            out = small / path.relative_to(large)
            out.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(path) as image:
                image.resize((SMALL, SMALL), Image.Resampling.LANCZOS).save(out)
    return {"1024": large, str(SMALL): small}


def train_once(root: Path, out: Path, steps: int, extra: list[str]) -> dict[str, float]:
    """One quick-start run on ``root``; mean logged step and data times (warm-up window left out), wall time."""
    name = f"run_{time.monotonic_ns()}"
    out.mkdir(parents=True, exist_ok=True)
    wall = run_cli(["train", "--recipe", "quickstart", "--steps", str(steps), "--set", "data.source=folder",
                    f"data.root={root}", "data.crop=128", f"checkpoints_root={out}", f"name={name}",
                    "train.log_every=10", "train.save_every=0", "val.every=0", "val.lpips=false", *extra], out)
    records = [json.loads(line) for line in (out / name / "log.jsonl").read_text().splitlines()]
    timed = [r for r in records if "sec_per_step" in r][1:]
    figures = {"step": statistics.mean(r["sec_per_step"] for r in timed), "wall": wall}
    if all("data_time" in r for r in timed):
        figures["data"] = statistics.mean(r["data_time"] for r in timed)
    return figures


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=8, help="pairs per split (train and val)")
    parser.add_argument("--steps", type=int, default=40, help="training steps per run (log every 10)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per size, alternating")
    parser.add_argument("--work", type=Path, default=None, help="folder for the pairs and runs (default: a temp dir)")
    parser.add_argument("--prepare", action="store_true", help="also train on `gan-retouch prepare` output")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="extra options for every run")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_real_loading_"))
    work.mkdir(parents=True, exist_ok=True)
    sets = build_sets(work, args.pairs)
    if args.prepare:
        prepared = work / "1024_prepared"
        if not prepared.is_dir():
            seconds = run_cli(["prepare", "--data", str(sets["1024"]), "--out", str(prepared)], work)
            print(f"gan-retouch prepare of the 1024 set: {seconds:.1f} s (whole process)")
        sets["1024 prepared"] = prepared
    extra = ["--set", *args.set] if args.set else []
    print(f"code: {Path(gan_retouch.__file__).resolve().parent}; {args.pairs} pairs per split, quick-start recipe, "
          f"crop 128, {args.steps} steps, extra: {args.set or '-'}")
    results: dict[str, list[dict[str, float]]] = {label: [] for label in sets}
    for repeat in range(args.repeats):
        for label, root in sets.items():
            figures = train_once(root, work / "runs", args.steps, extra)
            results[label].append(figures)
            shown = "  ".join(f"{k} {v:.3f}" for k, v in figures.items())
            print(f"repeat {repeat + 1} {label:>13}: {shown}  (s/step, s/step waiting for data, s whole run)")
    for label, runs in results.items():
        print(f"{label:>13}: s/step {spread([r['step'] for r in runs])}; whole run s {spread([r['wall'] for r in runs])}")
    small = results[str(SMALL)]
    for label in (k for k in results if k != str(SMALL)):
        ratios = [big["step"] / little["step"] for big, little in zip(results[label], small, strict=True)]
        print(f"step-time ratio {label} / {SMALL} (per repeat): {spread(ratios)}")


if __name__ == "__main__":
    main()
