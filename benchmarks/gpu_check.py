"""One prepared check of the GPU paths under a time budget, printing one table and keeping every finished row.

    python benchmarks/gpu_check.py [--device cuda:N] [--budget-s 420] [--json FILE] [--only SECTIONS] [--out DIR]

Sections, in the order they run (the rows are in benchmarks/gpu_rows.py):
- inference: teacher and default student through `gan-retouch bench --json`, fp16, 1024x1024 and 3840x2160,
  with and without CUDA-graph replay (the goal's figures first);
- train: the `autoretouch` training step on 512 px crops (VGG with random weights) on one fixed batch: fp32,
  bf16, bf16 channels_last, each with and without cudnn.benchmark, and fp16 with its GradScaler;
- torchrun: `gan-retouch train` in a one-process torchrun (NCCL), 20 steps, then `--resume` to 30, with the
  time spent waiting for data shown apart;
- onnx: the default student exported to ONNX, parity on the GPU;
- compile: the bf16 channels_last cudnn.benchmark step under torch.compile (what `train.amp: auto` trains on
  an H100; a cold compile takes a minute or more, so it comes last).

The budget: each section runs in a worker process. Before starting one, the check plans its rows from their
estimated seconds and skips, with the reason, those that do not fit what is left of ``--budget-s``; the worker
is killed, with every process it started, at its time limit. Each row goes to the JSON (``--json``) and, on
CUDA, to benchmarks/results/gpu_check.json (``GAN_RETOUCH_RESULTS_DIR`` sends it elsewhere) as soon as it
finishes, so a run killed from outside keeps its finished rows. Without CUDA the GPU-only rows say "no CUDA"
and the others run at tiny sizes. A failing row says why, the others still run; the exit status is 1 when a
row failed.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

STARTED = time.monotonic()  # a run's budget counts from here: the imports below take seconds

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results.py and the gpu_* modules, also by file path
import torch  # noqa: E402
from gpu_children import exit_with_parent, run_child  # noqa: E402
from gpu_rows import (  # noqa: E402
    COLUMNS,
    CPU_SCALE,
    SIZES,
    Row,
    Scale,
    TrainSetting,
    inference_rows,
    inference_setting,
    onnx_row,
    recipe_generator,
    torchrun_row,
    train_row,
)

import results  # noqa: E402
from gan_retouch.runtime import resolve_device  # noqa: E402

SECTIONS = ("inference", "train", "torchrun", "onnx", "compile")
NO_CUDA = "no CUDA"
STARTUP_S = {"cuda": 15.0, "cpu": 12.0}  # a worker's start: imports, the CUDA context
RESERVE_S = 3.0  # kept back for the last JSON, the table and the exit
TRAIN = [TrainSetting("fp32"), TrainSetting("bf16"), TrainSetting("bf16", channels_last=True),
         TrainSetting("fp32", cudnn_benchmark=True), TrainSetting("bf16", channels_last=True, cudnn_benchmark=True),
         TrainSetting("fp16", channels_last=True, cudnn_benchmark=True)]
COMPILE = [TrainSetting("bf16", channels_last=True, compiled=True, cudnn_benchmark=True)]


@dataclass
class Job:
    """Rows to make: their check and settings (for skipped and failed rows), the function making them from a
    deadline (time.time()), and their estimated seconds on CUDA and on the CPU."""

    check: str
    settings: list[str]
    make: Callable[[float], Row | list[Row]]
    estimate: dict[str, float]
    gpu_only: bool = True
    needs: tuple[str, ...] = ()  # modules it cannot run without (checked before a worker starts)


def section_jobs(section: str, device: torch.device, scale: Scale, root: Path) -> list[Job]:
    """The jobs of one section, in the order they run (the same list in the check and in its worker)."""
    if section in ("train", "compile"):
        shared: dict[str, Any] = {}
        cost = {"cuda": 120.0, "cpu": 60.0} if section == "compile" else {"cuda": 10.0, "cpu": 3.0}
        return [Job("train step", [setting.describe(scale)],
                    lambda _deadline, setting=setting: train_row(device, scale, root / "train", setting, shared),
                    cost, gpu_only=setting.gpu_only) for setting in (COMPILE if section == "compile" else TRAIN)]
    if section == "torchrun":
        return [Job("torchrun", [f"1 process ({'NCCL' if device.type == 'cuda' else 'gloo'}), then --resume"], partial(torchrun_row, device, scale, root),
                    {"cuda": 80.0, "cpu": 90.0}, gpu_only=False)]
    if section == "inference":
        models = {"student": recipe_generator("distill", "student"), "teacher": recipe_generator("train", "autoretouch")}
        return [Job("inference", [f"{inference_setting(role, entry, graphs)} {size}" for size in SIZES],
                    partial(inference_rows, device, role, entry, graphs), {"cuda": 20.0, "cpu": 30.0})
                for role, entry in models.items() for graphs in (False, True)]
    return [Job("onnx", ["student fp32, parity on the GPU"], lambda _deadline: onnx_row(device, root),
                {"cuda": 60.0, "cpu": 30.0}, needs=("onnxscript", "onnxruntime"))]


def run_job(job: Job, device: torch.device, deadline: float) -> list[Row]:
    """The job's rows; an exception becomes FAIL rows naming it, and GPU memory is released for the next job."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*RANDOM weights.*")
            made = job.make(deadline)
        return made if isinstance(made, list) else [made]
    except Exception as exc:  # noqa: BLE001 (a row says why it failed; the others still run)
        first_line = (str(exc).strip().splitlines() or [""])[0]
        return [Row(job.check, setting, f"FAIL: {type(exc).__name__}: {first_line}") for setting in job.settings]
    finally:
        if device.type == "cuda":
            gc.collect()
            torch.cuda.empty_cache()
            torch._dynamo.reset()


def worker(section: str, indices: list[int], device: torch.device, scale: Scale, root: Path, rows_file: Path,
           deadline: float) -> None:
    """In the worker process: run the planned jobs, appending ``{"started": i}`` then ``{"done": i, "rows"}``."""
    exit_with_parent()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    jobs = section_jobs(section, device, scale, root)
    with rows_file.open("a") as out:
        for index in indices:
            out.write(json.dumps({"started": index}) + "\n")
            out.flush()
            rows = run_job(jobs[index], device, deadline)
            out.write(json.dumps({"done": index, "rows": [asdict(row) for row in rows]}) + "\n")
            out.flush()


@dataclass
class Check:
    """The check's state: the rows so far, written out after every change."""

    device: torch.device
    budget_s: float
    json_path: Path | None
    record: bool = True
    started: float = field(default_factory=time.monotonic)
    rows: list[Row] = field(default_factory=list)

    def left(self) -> float:
        return self.budget_s - (time.monotonic() - self.started) - RESERVE_S

    def name(self) -> str:
        return torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "CPU, tiny sizes"

    def title(self) -> str:
        return f"gpu_check on {self.device} ({self.name()}), torch {torch.__version__}"

    def add(self, rows: list[Row], complete: bool = False) -> None:
        self.rows += rows
        for row in rows:  # one line per row as it comes: the log keeps them whatever happens next
            print(" | ".join(Row.cells(row)), flush=True)
        if self.json_path:
            data = {"title": self.title(), "budget_s": self.budget_s, "complete": complete,
                    "elapsed_s": round(time.monotonic() - self.started, 1), "rows": [asdict(row) for row in self.rows]}
            partial_file = self.json_path.with_name(self.json_path.name + ".tmp")
            partial_file.write_text(json.dumps(data, indent=2))
            os.replace(partial_file, self.json_path)
        if self.device.type == "cuda" and self.record:
            results.record("gpu_check", [results.table(self.title(), COLUMNS, map(Row.cells, self.rows))],
                           f"gpu_check on {self.name()}")


def plan_section(jobs: list[Job], check: Check) -> tuple[list[int], float]:
    """The jobs that fit the budget left (their indices) and their estimated seconds; the others get rows now."""
    kind = check.device.type
    chosen, planned = [], STARTUP_S[kind]
    for index, job in enumerate(jobs):
        missing = [name for name in job.needs if importlib.util.find_spec(name) is None]
        if job.gpu_only and kind != "cuda":
            check.add([Row(job.check, setting, NO_CUDA) for setting in job.settings])
        elif missing:
            check.add([Row(job.check, setting, f"skipped: {', '.join(missing)} not installed")
                       for setting in job.settings])
        elif planned + job.estimate[kind] <= check.left():
            chosen.append(index)
            planned += job.estimate[kind]
        else:
            reason = (f"skipped: needs about {job.estimate[kind]:.0f} s, {max(check.left() - planned, 0):.0f} s of "
                      f"--budget-s {check.budget_s:g} left")
            check.add([Row(job.check, setting, reason) for setting in job.settings])
    return chosen, planned


def run_section(section: str, check: Check, argv_base: list[str], scale: Scale, root: Path) -> None:
    """Plan the section, run it in a worker killed at its limit, and add each row as it finishes."""
    jobs = section_jobs(section, check.device, scale, root)
    chosen, planned = plan_section(jobs, check)
    if not chosen:
        return
    limit = min(check.left(), 2 * planned + 30)
    rows_file = root / f"rows_{section}.jsonl"
    seen = 0

    def collect() -> None:
        nonlocal seen
        lines = rows_file.read_text().splitlines() if rows_file.exists() else []
        for line in lines[seen:]:
            if line.endswith("}"):
                entry = json.loads(line)
                if "done" in entry:
                    check.add([Row(**row) for row in entry["rows"]])
                seen += 1

    command = [*argv_base, "--worker", section, "--jobs", ",".join(map(str, chosen)), "--rows", str(rows_file),
               "--deadline", str(time.time() + limit)]
    problem = None
    try:
        result = run_child(command, os.environ.copy(), limit, root / f"worker_{section}.log", on_poll=collect)
        if result.returncode != 0:
            log = (root / f"worker_{section}.log").read_text(errors="replace").strip().splitlines()
            problem = f"FAIL: the worker exited with status {result.returncode}: {log[-1] if log else ''}"
    except subprocess.TimeoutExpired:
        problem = f"FAIL: killed at the section's limit of {limit:.0f} s (the worker and all it started)"
    collect()
    entries = [json.loads(line) for line in rows_file.read_text().splitlines()] if rows_file.exists() else []
    finished = {entry["done"] for entry in entries if "done" in entry}
    running = {entry["started"] for entry in entries if "started" in entry} - finished
    for index in chosen:
        if index not in finished:
            ended = "skipped: the section ended before this row started"
            status = problem if index in running or not entries else ended
            check.add([Row(jobs[index].check, setting, status or "FAIL: no row") for setting in jobs[index].settings])


def main(argv: list[str] | None = None, started: float | None = None) -> int:
    """The check (or, with --worker, one section's worker); ``started``: when the budget began (default now)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--budget-s", type=float, default=420.0, help="seconds the whole check may take")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per setting (CUDA)")
    parser.add_argument("--out", help="folder for the runs, the export and the worker logs (default: temporary)")
    parser.add_argument("--json", help="write the rows to this JSON file, after every row")
    parser.add_argument("--no-record", action="store_true", help="do not write benchmarks/results/")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--jobs", help=argparse.SUPPRESS)
    parser.add_argument("--rows", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sections = [s for s in args.only.split(",") if s]
    if any(s not in SECTIONS for s in sections):
        parser.error(f"--only takes sections of {SECTIONS}; got {args.only!r}")
    device = resolve_device(args.device)
    scale = Scale(steps=args.steps) if device.type == "cuda" else CPU_SCALE
    if args.worker:
        worker(args.worker, [int(i) for i in args.jobs.split(",")], device, scale, Path(args.out), Path(args.rows),
               args.deadline)
        return 0
    check = Check(device, args.budget_s, Path(args.json) if args.json else None, not args.no_record,
                  started or time.monotonic())
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as temporary:
        root = Path(args.out or temporary)
        root.mkdir(parents=True, exist_ok=True)
        base = [sys.executable, str(Path(__file__).resolve()), "--device", str(device), "--steps", str(args.steps),
                "--out", str(root)]
        for section in sections:
            run_section(section, check, base, scale, root)
    check.add([], complete=True)
    results.print_table(results.table(check.title(), COLUMNS, map(Row.cells, check.rows)))
    skipped = [row for row in check.rows if row.status.startswith("skipped")]
    print(f"{len(check.rows)} rows in {time.monotonic() - check.started:.0f} s of --budget-s {args.budget_s:g}; "
          f"{len(skipped)} skipped (the reason is in each row)")
    return 1 if any(row.status.startswith("FAIL") for row in check.rows) else 0


if __name__ == "__main__":
    raise SystemExit(main(started=STARTED))
