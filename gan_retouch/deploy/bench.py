"""`gan-retouch bench`: a model's size, MACs, latency (1024 px and 4K), throughput and peak memory, and the budget
verdict.

The model runs through the inference path `retouch` uses (``deploy.backends``: BatchNorm folded, the faster memory
format, or ONNX Runtime), and the report says which. Size figures come from ``nets.profile.model_figures``;
latency from ``nets.profile.measure_latency`` (``torch.utils.benchmark.Timer``: one untimed call, then timed calls
for at least ``bench.min_time_s`` seconds; median, p90, min) on random images in [0, 1], with the GMAC/s it
achieves. ``bench.uhd`` adds one 3840x2160 (4K UHD) image. Throughput is images/s at the best batch size of
``bench.throughput_batches`` on CUDA (on CPU, ``bench.batch_size`` over the median latency). Peak memory is
``torch.cuda.max_memory_allocated`` plus NVML on CUDA, the process's peak resident set on CPU.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from gan_retouch.console import console
from gan_retouch.deploy.backends import Backend, TorchBackend, select_backend
from gan_retouch.deploy.bench_report import (
    budget_lines,
    check_budgets,
    gpu_info,
    peak_memory_mb,
    report_table,
)
from gan_retouch.errors import ConfigError
from gan_retouch.nets.base import run_generator
from gan_retouch.nets.profile import count_macs, measure_latency, model_figures, stand_in_mask
from gan_retouch.registry import choice
from gan_retouch.runtime import PRECISION_DTYPES, resolve_device, seed_everything
from gan_retouch.values import is_integer, is_number

UHD = (2160, 3840)  # 4K UHD portrait area, height x width
UHD_AUTO_MAX_GMACS = 50.0  # bench.uhd=auto times 4K for models up to this many GMACs at 1024x1024


def load_model(options: dict[str, Any]) -> tuple[nn.Module, str, str | None]:
    """The generator to measure (eval mode, on CPU), where it came from, and its checkpoint path."""
    bench = options["bench"]
    if bool(bench["checkpoint"]) == bool(bench["model"]):
        raise ConfigError("bench needs exactly one of --checkpoint CKPT or --model NAME "
                          "(e.g. gan-retouch bench --model student_fast --set bench.args={width: 32})")
    if bench["checkpoint"]:
        from gan_retouch.engine.checkpoint import describe_network, load_generator

        model, info = load_generator(bench["checkpoint"], use_ema=True)
        return model, f"{describe_network(info['generator'])} from {info['path']}", info["path"]
    import gan_retouch.nets  # noqa: F401  (registers the generators)
    from gan_retouch.registry import GENERATORS

    model = GENERATORS.build(bench["model"], **bench["args"]).eval()
    args = ", ".join(f"{k}={v!r}" for k, v in sorted(bench["args"].items()))
    return model, f"{bench['model']}({args}) with random weights", None


def check_bench_settings(bench: dict[str, Any], device: torch.device) -> None:
    """Reject settings that cannot work on this device, or out-of-range counts, with a clear message."""
    choice(bench["precision"], tuple(PRECISION_DTYPES), "bench.precision")
    choice(bench["channels_last"], ("auto", True, False), "bench.channels_last")
    choice(bench["uhd"], ("auto", True, False), "bench.uhd")
    for key, minimum in (("size", 1), ("batch_size", 1), ("warmup", 0)):
        if not is_integer(bench[key]) or bench[key] < minimum:
            raise ConfigError(f"bench.{key} must be an integer >= {minimum}, got {bench[key]!r}")
    if not is_number(bench["min_time_s"]) or bench["min_time_s"] <= 0:
        raise ConfigError(f"bench.min_time_s must be a number of seconds > 0, got {bench['min_time_s']!r}")
    batches = bench["throughput_batches"]
    if not batches or not all(is_integer(b) and b > 0 for b in batches):
        raise ConfigError(f"bench.throughput_batches must be a list of positive integers, got {batches!r}")
    if bench["cuda_graph"] and device.type != "cuda":
        raise ConfigError(f"bench.cuda_graph replays a CUDA graph and needs a CUDA device; this run uses "
                          f"{device}. Use --device cuda, or --set bench.cuda_graph=false")
    if bench["cuda_graph"] and bench["compile"]:
        raise ConfigError("bench.cuda_graph and bench.compile are exclusive here: choose one "
                          "(torch.compile(mode='reduce-overhead') already uses CUDA graphs)")
    if (bench["cuda_graph"] or bench["compile"]) and bench["backend"] == "onnxruntime":
        raise ConfigError("bench.compile and bench.cuda_graph apply to the torch backend; use bench.backend=torch")


def prepare(model: nn.Module, bench: dict[str, Any], device: torch.device, checkpoint: str | None) -> Backend:
    """The inference backend for ``model`` as the settings ask (compiled when asked)."""
    channels_last = None if bench["channels_last"] == "auto" else bool(bench["channels_last"])
    backend = select_backend(model, device, bench["backend"], bench["precision"], "bench", checkpoint,
                             channels_last=channels_last)
    if bench["compile"] and isinstance(backend, TorchBackend):
        backend.network = torch.compile(backend.network)
        backend.description += ", torch.compile"
    return backend


def forward_fn(backend: Backend, x: torch.Tensor, cuda_graph: bool) -> Callable[[], Any]:
    """A no-argument callable running one forward pass on ``x`` (a replayed CUDA graph when asked)."""
    mask = stand_in_mask(x, backend.takes_mask)
    if not cuda_graph:
        return lambda: backend(x, mask)
    network = backend.network
    x = x.to(backend.dtype).contiguous(memory_format=torch.channels_last if backend.channels_last
                                       else torch.contiguous_format)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):  # warm up on a side stream before capture, as the CUDA graph docs require
            run_generator(network, x, mask)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        run_generator(network, x, mask)
    return graph.replay


def time_input(backend: Backend, bench: dict[str, Any], device: torch.device, batch: int, height: int,
               width: int, min_time_s: float) -> dict[str, float]:
    """Latency (ms) of ``backend`` on a random ``batch`` x 3 x ``height`` x ``width`` image."""
    x = torch.rand(batch, 3, height, width, device=device)
    with torch.inference_mode(not bench["cuda_graph"]), torch.no_grad():
        return measure_latency(forward_fn(backend, x, bench["cuda_graph"]), min_time_s, bench["warmup"])


def measure_throughput(backend: Backend, bench: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Images/s for each of ``bench.throughput_batches`` until one runs out of GPU memory, and the best."""
    per_batch: dict[str, float] = {}
    skipped: list[int] = []
    for batch in bench["throughput_batches"]:
        try:
            median = time_input(backend, bench, device, batch, bench["size"], bench["size"],
                                bench["min_time_s"] / 4)["median"]
        except torch.cuda.OutOfMemoryError:
            skipped.append(batch)
            torch.cuda.empty_cache()
            break
        per_batch[str(batch)] = batch / (median / 1000.0)
    if not per_batch:
        raise ConfigError(f"bench ran out of GPU memory even at batch {bench['throughput_batches'][0]} and size "
                          f"{bench['size']}; lower --size or bench.throughput_batches")
    return throughput_summary(per_batch, skipped)


def throughput_summary(per_batch: dict[str, float], out_of_memory_at: list[int]) -> dict[str, Any]:
    """The best images/s over the batch sizes tried."""
    best = max(per_batch, key=per_batch.get)
    return {"images_per_s": per_batch[best], "best_batch": int(best), "per_batch": per_batch,
            "out_of_memory_at": out_of_memory_at}


def benchmark(model: nn.Module, bench: dict[str, Any], device: torch.device,
              checkpoint: str | None = None) -> dict[str, Any]:
    """Every figure of the report for one model (``bench`` is the ``bench`` option group)."""
    check_bench_settings(bench, device)
    size = bench["size"]
    figures = model_figures(model, size)
    report: dict[str, Any] = {
        "device": str(device), "precision": bench["precision"], "size": size, "batch_size": bench["batch_size"],
        "parameters": figures["params"], "size_mb_fp32": figures["mb_fp32"], "size_mb_fp16": figures["mb_fp16"],
        "gmacs": figures["gmacs"], "torch": torch.__version__,
    }
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    backend = prepare(model, bench, device, checkpoint)
    report.update(backend=backend.description, compile=bool(bench["compile"]), cuda_graph=bool(bench["cuda_graph"]))
    report["latency_ms"] = time_input(backend, bench, device, bench["batch_size"], size, size, bench["min_time_s"])
    report["latency_ms"]["warmup"] = bench["warmup"]
    if bench["uhd"] is True or (bench["uhd"] == "auto" and figures["gmacs"] * (1024 / size) ** 2
                                <= UHD_AUTO_MAX_GMACS):
        report["uhd"] = {"size": list(UHD), "gmacs": count_macs(model, (1, 3, *UHD)) / 1e9,
                         "latency_ms": time_input(backend, bench, device, 1, *UHD, bench["min_time_s"])}
    if device.type == "cuda":
        report["throughput"] = measure_throughput(backend, bench, device)
    else:  # on CPU images/s barely depends on the batch: derive it from the latency runs
        images_per_s = bench["batch_size"] / (report["latency_ms"]["median"] / 1000.0)
        report["throughput"] = throughput_summary({str(bench["batch_size"]): images_per_s}, [])
    report["memory"] = peak_memory_mb(device)
    report["gpu"] = gpu_info(device) if device.type == "cuda" else None
    report["budgets"] = check_budgets(report["latency_ms"]["median"], report["size_mb_fp32"],
                                      bench["budget_ms"], bench["budget_mb"])
    return report


def run_bench(options: dict[str, Any]) -> int:
    """Entry point of ``gan-retouch bench``; exit status 1 when a budget fails."""
    seed_everything(options["seed"])
    device = resolve_device(options["device"])
    check_bench_settings(options["bench"], device)
    model, description, checkpoint = load_model(options)
    report = {"model": description, **benchmark(model, options["bench"], device, checkpoint)}
    if options["bench"]["json"]:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        console.print(report_table(report))
        for line in budget_lines(report["budgets"], report["size"]):
            console.print(line)
    return 0 if all(v["passed"] for v in report["budgets"]) else 1
