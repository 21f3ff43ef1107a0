"""Training step time on large pairs against the same pairs stored small: does training wait on data?

Builds N synthetic pairs at 1024 px (`gan-retouch synth --size 1024`, train and val splits) and the same pairs
resized to 256 px, then trains the quick-start recipe for a few steps on each with ``data.source=folder
data.crop=128``, each run in its own process as a user would start it. Prints the per-step times the run logs
(log.jsonl: medians over the log windows of ``sec_per_step`` and, where the code logs it, ``data_time``; the
first window, the warm-up, is left out), the whole run's wall time, and the ratio 1024 / 256 per repeat, so the
spread on a shared machine shows.

    python benchmarks/bench_real_loading.py [--pairs 8] [--steps 40] [--repeats 3] [--work DIR]
        [--set KEY=VALUE ...]   (extra options for every run, e.g. data.cache=false)
        [--code OLD_TREE NEW_TREE]   (compare source trees, e.g. a `git archive` of main and this checkout)
        [--together]   (start all runs of a repeat at once: on a shared, loaded machine they then share its load)
        [--prepare]   (also train on `gan-retouch prepare` output of the 1024 set)
        [--no-record]   (print only; otherwise the table goes to benchmarks/results/bench_real_loading.json)
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

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results.py, also when loaded by file path
import gan_retouch
from results import record, table  # noqa: E402

SMALL = 256
CODE = Path(gan_retouch.__file__).resolve().parents[1]  # the source tree this script imports


def _child(args: list[str], work: Path, code: Path) -> tuple[subprocess.Popen, Path]:
    """Start ``python -m gan_retouch ARGS`` on the package under ``code``, in ``work`` (Python puts the current
    folder first on the path, so a child started in a source tree would import that tree), output to a file."""
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(code)}
    output = work / f"child_{time.monotonic_ns()}.txt"
    with output.open("w") as stream:
        child = subprocess.Popen([sys.executable, "-m", "gan_retouch", *args], stdout=stream,
                                 stderr=subprocess.STDOUT, env=env, cwd=work)
    return child, output


def _check(child: subprocess.Popen, output: Path, args: list[str]) -> None:
    if child.wait() != 0:
        raise SystemExit(f"gan-retouch {' '.join(args)} failed:\n{output.read_text()}")


def run_cli(args: list[str], work: Path, code: Path = CODE) -> float:
    """Run ``python -m gan_retouch ARGS`` in a fresh process and wait; its wall time in seconds."""
    started = time.perf_counter()
    _check(*_child(args, work, code), args)
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


def train_args(root: Path, out: Path, name: str, steps: int, extra: list[str]) -> list[str]:
    return ["train", "--recipe", "quickstart", "--steps", str(steps), "--set", "data.source=folder",
            f"data.root={root}", "data.crop=128", f"checkpoints_root={out}", f"name={name}", "train.log_every=10",
            "train.save_every=0", "val.every=0", "val.lpips=false", *extra]


def figures_of(run_dir: Path, wall: float) -> dict[str, float]:
    """Median logged step and data time over the log windows (the first, the warm-up, left out), and wall time."""
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    timed = [r for r in records if "sec_per_step" in r][1:]
    figures = {"step": statistics.median(r["sec_per_step"] for r in timed), "wall": wall}
    if all("data_time" in r for r in timed):
        figures["data"] = statistics.median(r["data_time"] for r in timed)
    return figures


def train_runs(runs: dict[str, tuple[Path, Path]], out: Path, steps: int, extra: list[str],
               together: bool) -> dict[str, dict[str, float]]:
    """Quick-start runs, label -> (data root, code tree), one after the other or all started at once."""
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    batches = [list(runs.items())] if together else [[item] for item in runs.items()]
    for batch in batches:
        started, pending = time.perf_counter(), {}
        for label, (root, code) in batch:
            name = f"run_{time.monotonic_ns()}"
            args = train_args(root, out, name, steps, extra)
            pending[label] = (name, args, *_child(args, out, code))
        while pending:  # poll, so that each run's wall time ends when it ends
            for label, (name, args, child, output) in list(pending.items()):
                if child.poll() is not None:
                    _check(child, output, args)
                    results[label] = figures_of(out / name, time.perf_counter() - started)
                    del pending[label]
            time.sleep(0.2)
    return results


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=8, help="pairs per split (train and val)")
    parser.add_argument("--steps", type=int, default=40, help="training steps per run (log every 10)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per size and code tree")
    parser.add_argument("--work", type=Path, default=None, help="folder for the pairs and runs (default: a temp dir)")
    parser.add_argument("--code", nargs="+", type=Path, default=[CODE], metavar="DIR",
                        help="source trees to compare (each holds gan_retouch/); default: the one imported here")
    parser.add_argument("--together", action="store_true",
                        help="start all runs of a repeat at once, so that they share the machine's load")
    parser.add_argument("--prepare", action="store_true", help="also train on `gan-retouch prepare` output")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="extra options for every run")
    parser.add_argument("--no-record", action="store_true", help="print only; do not write benchmarks/results/")
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
    codes = {str(code) if len(args.code) > 1 else "": code.resolve() for code in args.code}
    runs = {(tree, size): (root, code) for tree, code in codes.items() for size, root in sets.items()}
    print(f"code: {', '.join(str(c) for c in codes.values())}; {args.pairs} pairs per split, quick-start recipe, "
          f"crop 128, {args.steps} steps, {'together' if args.together else 'one after the other'}, "
          f"extra: {args.set or '-'}")
    results: dict[tuple[str, str], list[dict[str, float]]] = {key: [] for key in runs}
    for repeat in range(args.repeats):
        labelled = {f"{tree} {size}".strip(): value for (tree, size), value in runs.items()}
        done = train_runs(labelled, work / "runs", args.steps, extra, args.together)
        for (tree, size) in runs:
            figures = done[f"{tree} {size}".strip()]
            results[(tree, size)].append(figures)
            shown = "  ".join(f"{k} {v:.3f}" for k, v in figures.items())
            print(f"repeat {repeat + 1} {tree} {size:>13}: {shown}  (s/step, s whole run, s/step waiting for data)")
    rows = []
    for (tree, size), found in results.items():
        print(f"{tree} {size:>13}: s/step {spread([r['step'] for r in found])}; "
              f"whole run s {spread([r['wall'] for r in found])}")
        data = [r["data"] for r in found if "data" in r]
        rows.append([f"{tree} {size} px".strip(), f"{statistics.median(r['step'] for r in found):.3f}",
                     f"{statistics.median(data):.3f}" if data else "-",
                     f"{statistics.median(r['wall'] for r in found):.1f}", ""])
    for tree in codes:
        small = results[(tree, str(SMALL))]
        for size in (k for k in sets if k != str(SMALL)):
            ratios = [big["step"] / little["step"] for big, little in zip(results[(tree, size)], small, strict=True)]
            print(f"{tree} step-time ratio {size} / {SMALL} (per repeat): {spread(ratios)}")
            rows.append([f"{tree} ratio {size} / {SMALL}".strip(), "", "", "", spread(ratios)])
    if not args.no_record:
        settings = f"{args.pairs} pairs, {args.steps} steps, {args.repeats} repeats{', together' if args.together else ''}"
        record("bench_real_loading", [table(f"quick-start recipe, 128 px crops; medians over repeats ({settings})",
                                            ["pairs", "s / step", "data s / step", "whole run s", "step-time ratio"],
                                            rows)],
               title=f"Step time, 1024 px against 256 px pairs ({settings}; extra: {' '.join(args.set) or '-'})")


if __name__ == "__main__":
    main()
