"""One prepared check of the GPU paths, a few minutes on one H100, printing one table.

    python benchmarks/gpu_check.py [--device cuda:N] [--only train,torchrun,inference,onnx] [--steps 10] [--out DIR]

- train: the `autoretouch` training step (G and D, its losses; VGG with random weights) on 512 px crops, fp32 and
  AMP bf16, with and without channels_last and torch.compile, on one fixed batch: ms per step, images/s, peak memory.
- torchrun: `gan-retouch train` in a one-process torchrun (NCCL: process group and DDP) for 20 steps, then
  `--resume` to 30; speed from the log record at step 20 (the resumed run compiles again).
- inference: teacher and default student through `gan-retouch bench --json` (the CLI, so the check survives
  changes behind it), fp16, at 1024x1024 and 3840x2160, with and without CUDA-graph replay.
- onnx: the default student (random weights, moved off its identity start) exported to ONNX, parity on the GPU.
Without CUDA the GPU-only rows say "no CUDA" and the training rows run at tiny sizes (tests/benchmarks/test_gpu_check.py); on
a GPU the table is recorded in benchmarks/results/gpu_check.json (--no-record: not). A failing row says why and
the others still run; the exit status is 1 when a row failed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from gan_retouch.config import parse_set_items, resolve
from gan_retouch.engine.checkpoint import load_checkpoint
from gan_retouch.engine.distributed import DistInfo
from gan_retouch.engine.model import RetouchModel
from gan_retouch.engine.precision import resolve_precision
from gan_retouch.engine.stage import batch_stream, plan_stages
from gan_retouch.errors import ConfigError
from gan_retouch.registry import GENERATORS
from gan_retouch.runtime import resolve_device, seed_everything

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results.py, also when loaded by file path
import results  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("train", "torchrun", "inference", "onnx")
NO_CUDA = "no CUDA"
SIZES = ("1024x1024", "3840x2160")
COLUMNS = ("check", "setting", "result", "ms", "images/s", "peak MB", "finite", "note")


@dataclass
class Row:
    check: str
    setting: str
    status: str = "ok"
    ms: float | None = None
    images_per_s: float | None = None
    peak_mb: float | None = None
    finite: bool | None = None
    note: str = ""

    def cells(self) -> list[str]:
        figures = ["-" if value is None else f"{value:.1f}" for value in (self.ms, self.images_per_s, self.peak_mb)]
        finite = "-" if self.finite is None else "yes" if self.finite else "NO"
        return [self.check, self.setting, self.status, *figures, finite, self.note]


@dataclass(frozen=True)
class Scale:
    """The check's sizes: the real ones on CUDA, tiny ones (4-channel networks, no VGG) on the CPU."""

    crop: int = 512
    batch: int = 4
    steps: int = 10
    warmup: int = 3
    torchrun_steps: int = 20
    tiny: bool = False


CPU_SCALE = Scale(crop=32, batch=2, steps=1, warmup=0, torchrun_steps=2, tiny=True)
TINY_NETWORKS = ["model.generator.args.ngf=4", "model.generator.args.n_blocks=1", "model.discriminator.args.ndf=4",
                 "model.discriminator.args.n_layers=1", "losses.vgg=null"]


def train_items(scale: Scale, root: Path, name: str) -> list[str]:
    """--set items of an `autoretouch` run at the check's scale (no LPIPS)."""
    items = [f"checkpoints_root={root}", f"name={name}", f"data.crop={scale.crop}", f"data.synthetic.size={scale.crop}",
             f"data.batch_size={scale.batch}", "data.val_count=2", "data.synthetic.val_count=2", "val.lpips=false",
             "val.every=0", "val.samples=1"]
    return items + (TINY_NETWORKS if scale.tiny else ["losses.vgg.weights=random"])


def synchronized_time(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def train_setting(scale: Scale, amp: str, channels_last: bool, compiled: bool) -> str:
    return f"autoretouch {scale.crop}px x{scale.batch} {amp}{' channels_last' * channels_last}{' compile' * compiled}"


def train_row(device: torch.device, scale: Scale, root: Path, amp: str, channels_last: bool, compiled: bool,
              shared: dict[str, Any]) -> Row:
    """Time the training step of one precision (fp32 | bf16) / memory format / compile setting on one fixed batch."""
    items = [*train_items(scale, root, "train"), f"device={device}", f"train.amp={amp if amp == 'bf16' else 'off'}",
             f"train.channels_last={str(channels_last).lower()}", f"train.compile={str(compiled).lower()}"]
    options = resolve("train", "autoretouch", parse_set_items(items))[0]
    seed_everything(0)
    model = RetouchModel(options, device, DistInfo(), resolve_precision(options["train"], device))
    plan = plan_stages(options)[0]
    model.start_stage(plan)
    if "batch" not in shared:  # one batch for every setting: the synthesizer is not what is timed
        shared["batch"] = next(batch_stream(plan, 0, 0, DistInfo(), device))
    batches = [shared["batch"]] * model.d_steps
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(scale.warmup):
        model.train_step(batches)
    started = synchronized_time(device)
    for _ in range(scale.steps):
        values = model.train_step(batches)
    seconds = (synchronized_time(device) - started) / scale.steps
    finite = all(bool(torch.isfinite(value).all()) for value in values.values())
    return Row("train step", train_setting(scale, amp, channels_last, compiled), "ok" if finite else "FAIL",
               seconds * 1000, scale.batch / seconds,
               torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None, finite,
               f"{scale.warmup} warm-up + {scale.steps} timed steps; G {float(values['G']):.4g}")


def run_command(args: list[str], device: torch.device, timeout: float) -> subprocess.CompletedProcess:
    """A child command with this checkout's package first on the path (``cuda:N``: its only visible GPU); a
    non-zero exit raises with its last output line (the CLI's one-line error)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    if device.type == "cuda" and device.index is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(device.index)
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        raise RuntimeError(f"{' '.join(args[1:5])}... exit {result.returncode}: {lines[-1] if lines else ''}")
    return result


def torchrun_row(device: torch.device, scale: Scale, root: Path, timeout: float = 300) -> Row:
    """`gan-retouch train` in a one-process torchrun, then resumed: the process group, DDP and the resume."""
    first, total = scale.torchrun_steps, scale.torchrun_steps + scale.torchrun_steps // 2
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "-m",
               "gan_retouch", "train", "--recipe", "autoretouch", "--device", device.type, "--set",
               *train_items(scale, root, "torchrun"), f"train.log_every={max(1, first // 2)}"]
    run_command([*command, f"train.steps={first}"], device, timeout)
    saved = load_checkpoint(root / "torchrun" / "latest.pt")["step"]
    run_command([*command, f"train.steps={total}", "--resume"], device, timeout)
    resumed = load_checkpoint(root / "torchrun" / "latest.pt")["step"]
    records = [json.loads(line) for line in (root / "torchrun" / "log.jsonl").read_text().splitlines()]
    at = next(record for record in records if record["step"] == first and "G" in record)
    finite = all(value == value for record in records for value in record.values() if isinstance(value, float))
    return Row("torchrun", f"1 process ({'NCCL' if device.type == 'cuda' else 'gloo'}), {first} steps, then --resume "
               f"to {total}", "ok" if (saved, resumed) == (first, total) and finite else "FAIL",
               at["sec_per_step"] * 1000, at["images_per_sec"], at.get("gpu_max_allocated_mb"), finite,
               f"latest.pt at step {saved}, then {resumed}; GPU util {at.get('gpu_util_percent', '-')} %")


def recipe_generator(command: str, recipe: str) -> dict[str, Any]:
    """The generator entry (name, args) a bundled recipe trains."""
    return resolve(command, recipe, {})[0]["model"]["generator"]


def bench_report(name: str, args: dict[str, Any], device: torch.device, size: int, precision: str,
                 cuda_graph: bool, uhd: bool, min_time_s: float = 1.0, timeout: float = 240) -> dict[str, Any]:
    """`gan-retouch bench --json` of a registry generator with random weights, in a child process."""
    result = run_command(
        [sys.executable, "-m", "gan_retouch", "bench", "--model", name, "--device", device.type, "--size", str(size),
         "--precision", precision, "--json", "--set", f"bench.args={json.dumps(args)}", "bench.backend=torch",
         f"bench.cuda_graph={str(cuda_graph).lower()}", f"bench.uhd={str(uhd).lower()}",
         f"bench.min_time_s={min_time_s}", "bench.warmup=3", "bench.throughput_batches=[1]"],
        device, timeout)
    return json.loads(result.stdout[result.stdout.index("{"):])


def inference_setting(role: str, entry: dict[str, Any], graphs: bool) -> str:
    return f"{role} ({entry['name']}) fp16{' cuda_graph' if graphs else ''}"


def inference_rows(device: torch.device, role: str, entry: dict[str, Any], graphs: bool) -> list[Row]:
    """One model in fp16 at 1024x1024 and 4K, with or without CUDA graphs: two rows from one bench run."""
    setting = inference_setting(role, entry, graphs)
    report = bench_report(entry["name"], entry.get("args", {}), device, 1024, "fp16", graphs, True)
    peak, latencies = report["memory"].get("cuda_max_allocated_mb"), (report["latency_ms"], report.get("uhd", {}).get(
        "latency_ms"))
    return [Row("inference", f"{setting} {size}", "ok", ms["median"], 1000 / ms["median"], peak, None,
                f"median of {ms['runs']}; peak over the whole bench run; {report['backend']}") if ms else
            Row("inference", f"{setting} {size}", "FAIL: bench made no figure at this size")
            for size, ms in zip(SIZES, latencies, strict=True)]


def onnx_row(device: torch.device, root: Path) -> Row:
    """The default student exported to ONNX, its parity checked on ``device``."""
    from gan_retouch.deploy.export import export_model

    entry = recipe_generator("distill", "student")
    row = Row("onnx", f"student ({entry['name']}) fp32, parity on {device}")
    student = GENERATORS.build(entry["name"], **entry.get("args", {}))
    with torch.no_grad():  # off the identity its zero-initialised last layer starts at, or parity proves nothing
        for parameter in student.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    sizes = [[1, 1024, 1024], [2, 256, 192], [1, 67, 45]]
    try:
        results = export_model(student, "onnx", root / "student.onnx", check=True, check_sizes=sizes, device=device)
    except ConfigError as exc:  # a missing package (onnxscript, onnxruntime): not a fault of the code
        return Row(row.check, row.setting, f"skipped: {exc}")
    import onnxruntime

    row.note = (f"max abs diff {max(r['max_abs_diff'] for r in results):.1e} over {len(results)} inputs; "
                f"onnxruntime providers {onnxruntime.get_available_providers()}")
    return row


@dataclass
class Job:
    """Rows to make: their check and settings (for "no CUDA" and failure rows) and the function making them."""

    check: str
    settings: list[str]
    make: Callable[[], Row | list[Row]]
    gpu_only: bool = True


def section_jobs(section: str, device: torch.device, scale: Scale, root: Path) -> list[Job]:
    if section == "train":
        shared: dict[str, Any] = {}
        return [Job("train step", [train_setting(scale, amp, cl, compiled)],
                    partial(train_row, device, scale, root / "train", amp, cl, compiled, shared), gpu_only=compiled)
                for amp in ("fp32", "bf16") for cl in (False, True) for compiled in (False, True)]
    if section == "torchrun":
        return [Job("torchrun", ["1 process (NCCL), then --resume"], partial(torchrun_row, device, scale, root))]
    if section == "inference":
        models = {"teacher": recipe_generator("train", "autoretouch"), "student": recipe_generator("distill", "student")}
        return [Job("inference", [f"{inference_setting(role, entry, graphs)} {size}" for size in SIZES],
                    partial(inference_rows, device, role, entry, graphs))
                for role, entry in models.items() for graphs in (False, True)]
    return [Job("onnx", ["student fp32, parity on the GPU"], partial(onnx_row, device, root))]


def run_job(job: Job, device: torch.device) -> list[Row]:
    """The job's rows; an exception becomes FAIL rows naming it, and GPU memory is released for the next job."""
    if job.gpu_only and device.type != "cuda":
        return [Row(job.check, setting, NO_CUDA) for setting in job.settings]
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*RANDOM weights.*")
            made = job.make()
        return made if isinstance(made, list) else [made]
    except Exception as exc:  # noqa: BLE001 (a row says why it failed; the others still run)
        first_line = (str(exc).strip().splitlines() or [""])[0]
        return [Row(job.check, setting, f"FAIL: {type(exc).__name__}: {first_line}") for setting in job.settings]
    finally:
        if device.type == "cuda":
            gc.collect()
            torch.cuda.empty_cache()
            torch._dynamo.reset()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per setting (CUDA)")
    parser.add_argument("--out", help="folder for the runs and the export (default: a temporary folder)")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--no-record", action="store_true", help="do not write benchmarks/results/")
    args = parser.parse_args(argv)
    sections = [s for s in args.only.split(",") if s]
    if any(s not in SECTIONS for s in sections):
        parser.error(f"--only takes sections of {SECTIONS}; got {args.only!r}")
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    scale = Scale(steps=args.steps) if device.type == "cuda" else CPU_SCALE
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as temporary:
        root = Path(args.out or temporary)
        rows = [row for section in sections for job in section_jobs(section, device, scale, root)
                for row in run_job(job, device)]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU, tiny sizes"
    checks = results.table(f"gpu_check on {device} ({name}), torch {torch.__version__}", COLUMNS, map(Row.cells, rows))
    results.print_table(checks)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(row) for row in rows], indent=2))
    if device.type == "cuda" and not args.no_record:
        results.record("gpu_check", [checks], f"gpu_check on {name}")
    return 1 if any(row.status.startswith("FAIL") for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
