"""`gan-retouch bench`: a model's size, MACs, latency, throughput and peak memory, and the budget verdict.

Latency is the median and 90th percentile of ``bench.runs`` timed forward passes after ``bench.warmup``
untimed ones, on random images in [0, 1]. On CUDA each run is timed with CUDA events around the call and a
synchronisation; on CPU with ``time.perf_counter``. Throughput is images/s at the best batch size of
``bench.throughput_batches`` on CUDA (on CPU, ``bench.batch_size`` over the median latency). Peak memory is
``torch.cuda.max_memory_allocated`` plus the device's used memory from NVML on CUDA, and the process's peak
resident set (``resource.getrusage``) on CPU, which includes Python and torch themselves.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from rich.table import Table
from torch import nn

from gan_retouch.console import console
from gan_retouch.errors import ConfigError
from gan_retouch.nets.base import run_generator
from gan_retouch.nets.profile import count_macs, count_parameters, model_size_mb
from gan_retouch.registry import choice
from gan_retouch.runtime import resolve_device, seed_everything

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def load_model(options: dict[str, Any]) -> tuple[nn.Module, str]:
    """The generator to measure (eval mode, on CPU) and a description of where it came from."""
    bench = options["bench"]
    if bool(bench["checkpoint"]) == bool(bench["model"]):
        raise ConfigError("bench needs exactly one of --checkpoint CKPT or --model NAME "
                          "(e.g. gan-retouch bench --model student --set bench.args={width: 16})")
    if bench["checkpoint"]:
        from gan_retouch.engine.checkpoint import describe_network, load_generator

        model, info = load_generator(bench["checkpoint"], use_ema=True)
        return model, f"{describe_network(info['generator'])} from {info['path']}"
    import gan_retouch.nets  # noqa: F401  (registers the generators)
    from gan_retouch.registry import GENERATORS

    model = GENERATORS.build(bench["model"], **bench["args"]).eval()
    args = ", ".join(f"{k}={v!r}" for k, v in sorted(bench["args"].items()))
    return model, f"{bench['model']}({args}) with random weights"


def check_settings(bench: dict[str, Any], device: torch.device) -> None:
    """Reject settings that cannot work on this device, or out-of-range counts, with a clear message."""
    choice(bench["precision"], tuple(PRECISIONS), "bench.precision")
    choice(bench["channels_last"], ("auto", True, False), "bench.channels_last")
    for key, minimum in (("size", 1), ("batch_size", 1), ("warmup", 0), ("runs", 1)):
        if not isinstance(bench[key], int) or bench[key] < minimum:
            raise ConfigError(f"bench.{key} must be an integer >= {minimum}, got {bench[key]!r}")
    batches = bench["throughput_batches"]
    if not batches or not all(isinstance(b, int) and b > 0 for b in batches):
        raise ConfigError(f"bench.throughput_batches must be a list of positive integers, got {batches!r}")
    if bench["cuda_graph"] and device.type != "cuda":
        raise ConfigError(f"bench.cuda_graph replays a CUDA graph and needs a CUDA device; this run uses "
                          f"{device}. Use --device cuda, or --set bench.cuda_graph=false")
    if bench["cuda_graph"] and bench["compile"]:
        raise ConfigError("bench.cuda_graph and bench.compile are exclusive here: choose one "
                          "(torch.compile(mode='reduce-overhead') already uses CUDA graphs)")


def prepare(model: nn.Module, bench: dict[str, Any], device: torch.device) -> tuple[nn.Module, bool]:
    """The model on the device at the precision, channels_last and compiled as asked; and channels_last."""
    channels_last = device.type == "cuda" if bench["channels_last"] == "auto" else bool(bench["channels_last"])
    model = model.to(device=device, dtype=PRECISIONS[bench["precision"]]).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if bench["compile"]:
        model = torch.compile(model)
    return model, channels_last


def make_input(batch: int, size: int, dtype: torch.dtype, device: torch.device, channels_last: bool) -> torch.Tensor:
    """A random image batch in [0, 1] at the benchmark's dtype and memory format."""
    x = torch.rand(batch, 3, size, size, device=device).to(dtype)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def forward_fn(model: nn.Module, x: torch.Tensor, cuda_graph: bool) -> Callable[[], Any]:
    """A no-argument callable running one forward pass on ``x`` (a replayed CUDA graph when asked)."""
    if not cuda_graph:
        return lambda: run_generator(model, x)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):  # warm up on a side stream before capture, as the CUDA graph docs require
            run_generator(model, x)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        run_generator(model, x)
    return graph.replay


def time_runs(run: Callable[[], Any], warmup: int, runs: int, device: torch.device) -> list[float]:
    """Milliseconds of each of ``runs`` calls after ``warmup`` untimed ones (CUDA events on CUDA)."""
    for _ in range(warmup):
        run()
    timings = []
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        for _ in range(runs):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            torch.cuda.synchronize(device)
            timings.append(start.elapsed_time(end))
        return timings
    for _ in range(runs):
        start = time.perf_counter()
        run()
        timings.append((time.perf_counter() - start) * 1000.0)
    return timings


def summarize(timings: list[float]) -> dict[str, float]:
    """Median, 90th percentile (inclusive method) and minimum of the timings in ms."""
    p90 = statistics.quantiles(timings, n=10, method="inclusive")[8] if len(timings) > 1 else timings[0]
    return {"median": statistics.median(timings), "p90": p90, "min": min(timings), "runs": len(timings)}


def measure_throughput(model: nn.Module, bench: dict[str, Any], device: torch.device,
                       channels_last: bool) -> dict[str, Any]:
    """Images/s for each of ``bench.throughput_batches`` until one runs out of GPU memory, and the best."""
    batches = bench["throughput_batches"]
    dtype = PRECISIONS[bench["precision"]]
    per_batch: dict[str, float] = {}
    skipped: list[int] = []
    for batch in batches:
        try:
            x = make_input(batch, bench["size"], dtype, device, channels_last)
            run = forward_fn(model, x, bench["cuda_graph"])
            median = summarize(time_runs(run, max(1, bench["warmup"]), max(3, bench["runs"] // 4), device))["median"]
        except torch.cuda.OutOfMemoryError:
            skipped.append(batch)
            torch.cuda.empty_cache()
            break
        per_batch[str(batch)] = batch / (median / 1000.0)
    if not per_batch:
        raise ConfigError(f"bench ran out of GPU memory even at batch {batches[0]} and size {bench['size']}; "
                          "lower --size or bench.throughput_batches")
    return throughput_summary(per_batch, skipped)


def throughput_summary(per_batch: dict[str, float], out_of_memory_at: list[int]) -> dict[str, Any]:
    """The best images/s over the batch sizes tried."""
    best = max(per_batch, key=per_batch.get)
    return {"images_per_s": per_batch[best], "best_batch": int(best), "per_batch": per_batch,
            "out_of_memory_at": out_of_memory_at}


def gpu_info(device: torch.device) -> dict[str, Any]:
    """GPU name, driver and device-wide used memory from NVML (nvidia-ml-py)."""
    props = torch.cuda.get_device_properties(device)
    info: dict[str, Any] = {"name": props.name, "total_mb": props.total_memory / 1e6}
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            bus_id = f"{props.pci_domain_id:08x}:{props.pci_bus_id:02x}:{props.pci_device_id:02x}.0"
            handle = pynvml.nvmlDeviceGetHandleByPciBusId(bus_id)
            info["name"] = pynvml.nvmlDeviceGetName(handle)
            info["driver"] = pynvml.nvmlSystemGetDriverVersion()
            info["nvml_used_mb"] = pynvml.nvmlDeviceGetMemoryInfo(handle).used / 1e6
        finally:
            pynvml.nvmlShutdown()
    except Exception as exc:  # ImportError or one of NVMLError's many subclasses: reported, not hidden
        info["nvml_error"] = f"{type(exc).__name__}: {exc}"
    for key in ("name", "driver"):
        if isinstance(info.get(key), bytes):
            info[key] = info[key].decode()
    return info


def peak_memory_mb(device: torch.device) -> dict[str, float]:
    """Peak memory: CUDA allocator peak, or the process's peak resident set on CPU (MB = 1e6 bytes)."""
    if device.type == "cuda":
        return {"cuda_max_allocated_mb": torch.cuda.max_memory_allocated(device) / 1e6}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    bytes_used = rss if sys.platform == "darwin" else rss * 1024  # macOS reports bytes, Linux KiB
    return {"cpu_peak_rss_mb": bytes_used / 1e6}


def check_budgets(latency_ms: float, size_mb: float, budget_ms: float | None,
                  budget_mb: float | None) -> list[dict[str, Any]]:
    """One verdict per budget given: ``{name, value, limit, unit, passed}``."""
    verdicts = []
    for name, value, limit, unit in (("latency", latency_ms, budget_ms, "ms"), ("size", size_mb, budget_mb, "MB")):
        if limit is None:
            continue
        if limit <= 0:
            raise ConfigError(f"the {name} budget must be positive, got {limit} {unit}")
        verdicts.append({"name": name, "value": value, "limit": limit, "unit": unit, "passed": value <= limit})
    return verdicts


def benchmark(model: nn.Module, bench: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Every figure of the report for one model (``bench`` is the ``bench`` option group)."""
    check_settings(bench, device)
    size = bench["size"]
    report: dict[str, Any] = {
        "device": str(device),
        "precision": bench["precision"],
        "size": size,
        "batch_size": bench["batch_size"],
        "parameters": count_parameters(model),
        "size_mb_fp32": model_size_mb(model, torch.float32),
        "size_mb_fp16": model_size_mb(model, torch.float16),
        "gmacs": count_macs(model, (1, 3, size, size)) / 1e9,
        "torch": torch.__version__,
    }
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    prepared, channels_last = prepare(model, bench, device)
    report.update(channels_last=channels_last, compile=bool(bench["compile"]), cuda_graph=bool(bench["cuda_graph"]))
    x = make_input(bench["batch_size"], size, PRECISIONS[bench["precision"]], device, channels_last)
    with torch.inference_mode(not bench["cuda_graph"]), torch.no_grad():
        run = forward_fn(prepared, x, bench["cuda_graph"])
        report["latency_ms"] = summarize(time_runs(run, bench["warmup"], bench["runs"], device))
        report["latency_ms"]["warmup"] = bench["warmup"]
        if device.type == "cuda":
            report["throughput"] = measure_throughput(prepared, bench, device, channels_last)
        else:  # on CPU images/s barely depends on the batch: derive it from the latency runs
            images_per_s = bench["batch_size"] / (report["latency_ms"]["median"] / 1000.0)
            report["throughput"] = throughput_summary({str(bench["batch_size"]): images_per_s}, [])
    report["memory"] = peak_memory_mb(device)
    report["gpu"] = gpu_info(device) if device.type == "cuda" else None
    report["budgets"] = check_budgets(report["latency_ms"]["median"], report["size_mb_fp32"],
                                      bench["budget_ms"], bench["budget_mb"])
    return report


def report_table(report: dict[str, Any]) -> Table:
    """The report as a two-column rich table."""
    table = Table(title=f"bench: {report['model']}", title_justify="left", show_header=False)
    table.add_column("figure", style="cyan")
    table.add_column("value", style="bold")
    latency, throughput = report["latency_ms"], report["throughput"]
    device = report["device"] + (f" ({report['gpu']['name']}, driver {report['gpu'].get('driver', '?')})"
                                 if report["gpu"] else "")
    rows = [
        ("device", device),
        ("input", f"{report['batch_size']} x 3 x {report['size']} x {report['size']}, {report['precision']}, "
                  f"channels_last={report['channels_last']}, compile={report['compile']}, "
                  f"cuda_graph={report['cuda_graph']}"),
        ("parameters", f"{report['parameters']:,}"),
        ("file size", f"{report['size_mb_fp32']:.2f} MB fp32, {report['size_mb_fp16']:.2f} MB fp16"),
        ("MACs (batch 1)", f"{report['gmacs']:.4g} G"),
        ("latency", f"median {latency['median']:.2f} ms, p90 {latency['p90']:.2f} ms, min {latency['min']:.2f} ms "
                    f"({latency['runs']} runs after {latency['warmup']} warm-up)"),
        ("throughput", f"{throughput['images_per_s']:.2f} images/s at batch {throughput['best_batch']}"),
    ]
    rows += [(key.replace("_mb", "").replace("_", " "), f"{value:.1f} MB") for key, value in report["memory"].items()]
    if report["gpu"] and "nvml_used_mb" in report["gpu"]:
        rows.append(("NVML device memory used", f"{report['gpu']['nvml_used_mb']:.1f} MB"))
    if report["gpu"] and "nvml_error" in report["gpu"]:
        rows.append(("NVML", f"unavailable: {report['gpu']['nvml_error']}"))
    for table_row in rows:
        table.add_row(*table_row)
    return table


def budget_lines(verdicts: list[dict[str, Any]], size: int) -> list[str]:
    """``PASS latency 12.3 ms <= 50 ms at 1024x1024`` style lines (rich markup)."""
    lines = []
    for v in verdicts:
        mark = "[green]PASS[/]" if v["passed"] else "[red]FAIL[/]"
        relation = "<=" if v["passed"] else ">"
        where = f" at {size}x{size}" if v["name"] == "latency" else " (fp32)"
        lines.append(f"{mark} {v['name']} budget: {v['value']:.2f} {v['unit']} {relation} {v['limit']:g} {v['unit']}{where}")
    return lines


def run_bench(options: dict[str, Any]) -> int:
    """Entry point of ``gan-retouch bench``; exit status 1 when a budget fails."""
    seed_everything(options["seed"])
    device = resolve_device(options["device"])
    check_settings(options["bench"], device)
    model, description = load_model(options)
    report = {"model": description, **benchmark(model, options["bench"], device)}
    if options["bench"]["json"]:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        console.print(report_table(report))
        for line in budget_lines(report["budgets"], report["size"]):
            console.print(line)
    return 0 if all(v["passed"] for v in report["budgets"]) else 1
