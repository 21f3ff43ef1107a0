"""The rows of benchmarks/gpu_check.py: each function makes one row (or two) of the table, in a worker process.

- train: the `autoretouch` training step on one fixed batch (data time 0 by construction), in a given precision
  (fp32 | bf16 | fp16 with its GradScaler), memory format, torch.compile and cudnn.benchmark setting.
- torchrun: `gan-retouch train` in a one-process torchrun, then `--resume`; its data time from the log.
- inference: `gan-retouch bench --json` (the CLI, so the check survives changes behind it).
- onnx: the default student exported to ONNX, parity on the device.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from gpu_children import run_child, visible_devices

from gan_retouch.config import parse_set_items, resolve
from gan_retouch.engine.checkpoint import load_checkpoint
from gan_retouch.engine.distributed import DistInfo
from gan_retouch.engine.model import RetouchModel
from gan_retouch.engine.precision import resolve_precision
from gan_retouch.engine.stage import batch_stream, plan_stages
from gan_retouch.errors import ConfigError
from gan_retouch.registry import GENERATORS
from gan_retouch.runtime import seed_everything

REPO = Path(__file__).resolve().parents[1]
SIZES = ("1024x1024", "3840x2160")
COLUMNS = ("check", "setting", "result", "ms", "data ms", "images/s", "peak MB", "finite", "note")


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
    data_ms: float | None = None  # of ``ms``, the time spent waiting for data

    def cells(self) -> list[str]:
        figures = ["-" if value is None else f"{value:.1f}"
                   for value in (self.ms, self.data_ms, self.images_per_s, self.peak_mb)]
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
    workers: int = 4  # DataLoader workers of the torchrun run: the synthesizer off the training process
    tiny: bool = False


CPU_SCALE = Scale(crop=32, batch=2, steps=1, warmup=0, torchrun_steps=2, workers=0, tiny=True)
TINY_NETWORKS = ["model.generator.args.ngf=4", "model.generator.args.n_blocks=1", "model.discriminator.args.ndf=4",
                 "model.discriminator.args.n_layers=1", "losses.vgg=null"]


@dataclass(frozen=True)
class TrainSetting:
    amp: str  # fp32 | bf16 | fp16
    channels_last: bool = False
    compiled: bool = False
    cudnn_benchmark: bool = False

    def describe(self, scale: Scale) -> str:
        flags = [name for name, on in (("channels_last", self.channels_last), ("compile", self.compiled),
                                       ("cudnn.benchmark", self.cudnn_benchmark)) if on]
        return " ".join([f"autoretouch {scale.crop}px x{scale.batch} {self.amp}", *flags])

    @property
    def gpu_only(self) -> bool:
        return self.amp == "fp16" or self.compiled or self.cudnn_benchmark


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


def train_row(device: torch.device, scale: Scale, root: Path, setting: TrainSetting, shared: dict[str, Any]) -> Row:
    """Time the training step of one setting on one fixed batch (the synthesizer is not what is timed)."""
    items = [*train_items(scale, root, "train"), f"device={device}",
             f"train.amp={'off' if setting.amp == 'fp32' else setting.amp}",
             f"train.channels_last={str(setting.channels_last).lower()}",
             f"train.compile={str(setting.compiled).lower()}"]
    options = resolve("train", "autoretouch", parse_set_items(items))[0]
    torch.backends.cudnn.benchmark = setting.cudnn_benchmark
    seed_everything(0)
    model = RetouchModel(options, device, DistInfo(), resolve_precision(options["train"], device))
    plan = plan_stages(options)[0]
    model.start_stage(plan)
    if "batch" not in shared:
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
    scaler = model.optimization.scaler_g if model.precision.use_scaler else None
    note = f"{scale.warmup} warm-up + {scale.steps} timed steps; G {float(values['G']):.4g}"
    note += f"; GradScaler scale {scaler.get_scale():g}" if scaler is not None else ""
    return Row("train step", setting.describe(scale), "ok" if finite else "FAIL", seconds * 1000, scale.batch / seconds,
               torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None, finite, note, 0.0)


def child_env(device: torch.device) -> dict[str, str]:
    """The environment of a child command: this checkout's package first on the path, and with ``cuda:N`` only
    that GPU visible (the N-th of CUDA_VISIBLE_DEVICES when a launcher such as Slurm has set it)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    if device.type == "cuda":
        chosen = visible_devices(device.index, os.environ.get("CUDA_VISIBLE_DEVICES"))
        if chosen is not None:
            env["CUDA_VISIBLE_DEVICES"] = chosen
    return env


def run_command(args: list[str], device: torch.device, deadline: float) -> Any:
    """A child command killed (with all it started) at ``deadline`` (time.time()); a non-zero exit raises with its
    last output line (the CLI's one-line error)."""
    result = run_child(args, child_env(device), deadline - time.time())
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        raise RuntimeError(f"{' '.join(args[1:5])}... exit {result.returncode}: {lines[-1] if lines else ''}")
    return result


def torchrun_row(device: torch.device, scale: Scale, root: Path, deadline: float) -> Row:
    """`gan-retouch train` (eager, the check's compile row is in train) in a one-process torchrun, then resumed."""
    first, total = scale.torchrun_steps, scale.torchrun_steps + scale.torchrun_steps // 2
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "-m",
               "gan_retouch", "train", "--recipe", "autoretouch", "--device", device.type, "--set",
               *train_items(scale, root, "torchrun"), f"train.log_every={max(1, first // 2)}", "train.compile=false",
               f"data.num_workers={scale.workers}"]
    run_command([*command, f"train.steps={first}"], device, deadline)
    saved = load_checkpoint(root / "torchrun" / "latest.pt")["step"]
    run_command([*command, f"train.steps={total}", "--resume"], device, deadline)
    resumed = load_checkpoint(root / "torchrun" / "latest.pt")["step"]
    records = [json.loads(line) for line in (root / "torchrun" / "log.jsonl").read_text().splitlines()]
    at = next(record for record in records if record["step"] == first and "G" in record)
    finite = all(value == value for record in records for value in record.values() if isinstance(value, float))
    return Row("torchrun", f"1 process ({'NCCL' if device.type == 'cuda' else 'gloo'}), eager, {scale.workers} data "
               f"workers, {first} steps, then --resume to {total}",
               "ok" if (saved, resumed) == (first, total) and finite else "FAIL",
               at["sec_per_step"] * 1000, at["images_per_sec"], at.get("gpu_max_allocated_mb"), finite,
               f"latest.pt at step {saved}, then {resumed}; GPU util {at.get('gpu_util_percent', '-')} %",
               at["data_time"] * 1000)


def recipe_generator(command: str, recipe: str) -> dict[str, Any]:
    """The generator entry (name, args) a bundled recipe trains."""
    return resolve(command, recipe, {})[0]["model"]["generator"]


def bench_report(name: str, args: dict[str, Any], device: torch.device, size: int, precision: str,
                 cuda_graph: bool, uhd: bool, deadline: float, min_time_s: float = 1.0) -> dict[str, Any]:
    """`gan-retouch bench --json` of a registry generator with random weights, in a child process."""
    result = run_command(
        [sys.executable, "-m", "gan_retouch", "bench", "--model", name, "--device", device.type, "--size", str(size),
         "--precision", precision, "--json", "--set", f"bench.args={json.dumps(args)}", "inference.backend=torch",
         f"bench.cuda_graph={str(cuda_graph).lower()}", f"bench.uhd={str(uhd).lower()}",
         f"bench.min_time_s={min_time_s}", "bench.warmup=3", "bench.throughput_batches=[1]"],
        device, deadline)
    return json.loads(result.stdout[result.stdout.index("{"):])


def inference_setting(role: str, entry: dict[str, Any], graphs: bool) -> str:
    return f"{role} ({entry['name']}) fp16{' cuda_graph' if graphs else ''}"


def inference_rows_of(report: dict[str, Any], setting: str) -> list[Row]:
    """The 1024x1024 and 4K rows of one bench report, each with the allocator peak of its own phase."""
    phases = (("latency", report["latency_ms"]), ("uhd", report.get("uhd", {}).get("latency_ms")))
    rows = []
    for size, (phase, ms) in zip(SIZES, phases, strict=True):
        peak = report["memory"].get(f"cuda_max_allocated_mb_{phase}")
        rows.append(Row("inference", f"{setting} {size}", "ok", ms["median"], 1000 / ms["median"], peak, None,
                        f"median of {ms['runs']}; {report['backend']}") if ms else
                    Row("inference", f"{setting} {size}", "FAIL: bench made no figure at this size"))
    return rows


def inference_rows(device: torch.device, role: str, entry: dict[str, Any], graphs: bool, deadline: float) -> list[Row]:
    """One model in fp16 at 1024x1024 and 4K, with or without CUDA graphs: two rows from one bench run."""
    report = bench_report(entry["name"], entry.get("args", {}), device, 1024, "fp16", graphs, True, deadline)
    return inference_rows_of(report, inference_setting(role, entry, graphs))


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
