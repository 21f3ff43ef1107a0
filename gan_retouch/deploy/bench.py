"""`gan-retouch bench`: the time `retouch` takes per image, with a model's size, MACs, throughput and peak memory,
and the budget verdict.

What is timed is the model's inference plan (``inference.plan``: the checkpoint's working size, coarse pass and
edit floor, tiling, with the ``bench.*`` overrides) run by ``inference.run.run_plan`` through the backend
`retouch` picks (``deploy.backends``), on random images in [0, 1] of ``bench.size`` squared: the per-image
figure is `retouch`'s time without reading and writing files. The report prints the plan it timed. Size
figures come from ``inference.profile.model_figures``; MACs are given for the network alone at the input size
(native) and for the plan (the network at its working size, the coarse pass, tiles). Latency comes from
``inference.profile.measure_latency`` (``torch.utils.benchmark.Timer``: one untimed call, then timed calls for at
least ``bench.min_time_s`` seconds; median, p90, min), with the GMAC/s it achieves. ``bench.uhd`` adds one
3840x2160 (4K UHD) image. Throughput is images/s at the best batch size of ``bench.throughput_batches`` on CUDA
(on CPU, ``bench.batch_size`` over the median latency). Peak memory is ``torch.cuda.max_memory_allocated`` per
phase plus NVML on CUDA, the process's peak resident set on CPU.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from gan_retouch.config import with_inference
from gan_retouch.console import console
from gan_retouch.deploy.backends import Backend, TorchBackend, select_backend
from gan_retouch.deploy.bench_report import (
    budget_lines,
    check_budgets,
    gpu_info,
    peak_memory_mb,
    report_table,
)
from gan_retouch.deploy.bench_timing import measure_throughput, throughput_summary, time_plan
from gan_retouch.errors import ConfigError
from gan_retouch.inference.plan import InferencePlan, plan_for
from gan_retouch.inference.profile import count_macs, model_figures
from gan_retouch.inference.run import tile_for
from gan_retouch.runtime import resolve_device, seed_everything
from gan_retouch.values import is_integer, is_number

UHD = (2160, 3840)  # 4K UHD portrait area, height x width
UHD_AUTO_MAX_GMACS = 50.0 * UHD[0] * UHD[1] / 1024**2  # bench.uhd=auto: 4K when its plan costs <= 50 GMACs per MP


def load_bench_model(options: dict[str, Any], device: torch.device) -> tuple[nn.Module, InferencePlan, str, str | None]:
    """The generator to measure (eval mode, on CPU), its plan with the ``bench`` options applied, where it came
    from, and its checkpoint."""
    bench = with_inference(options, "bench")
    if bool(bench["checkpoint"]) == bool(bench["model"]):
        raise ConfigError("bench needs exactly one of --checkpoint CKPT or --model NAME "
                          "(e.g. gan-retouch bench --model student_fast --set bench.args={width: 32})")
    if bench["checkpoint"]:
        from gan_retouch.engine.checkpoint import describe_network
        from gan_retouch.engine.load import load_model

        loaded = load_model(bench["checkpoint"], bench, "inference", device)
        description = f"{describe_network(loaded.info['generator'])} from {loaded.source}"
        return loaded.network, loaded.plan, description, loaded.source
    import gan_retouch.nets  # noqa: F401  (registers the generators)
    from gan_retouch.registry import GENERATORS

    model = GENERATORS.build(bench["model"], **bench["args"]).eval()
    args = ", ".join(f"{k}={v!r}" for k, v in sorted(bench["args"].items()))
    return model, native_plan(model, bench, device), f"{bench['model']}({args}) with random weights", None


def native_plan(model: nn.Module, bench: dict[str, Any], device: torch.device, source: str = "the model") -> InferencePlan:
    """The plan of a model without a checkpoint (native size, its own floor) with the ``bench`` options applied."""
    return plan_for(model, InferencePlan(edit_floor=getattr(model, "edit_floor", 0.0)), bench, "inference", device.type,
                    source)


def check_bench_settings(bench: dict[str, Any], device: torch.device) -> None:
    """Reject settings that cannot work on this device, or out-of-range counts, with a clear message (the
    plan's fields are checked by ``inference.plan.resolve_plan``)."""
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
    if bench["precision"] == "auto":
        raise ConfigError("inference.precision=auto is retouch's probe of fp16 against fp32; bench times the "
                          "precision it is given: use fp32, fp16 or bf16")
    if (bench["cuda_graph"] or bench["compile"]) and bench["backend"] == "onnxruntime":
        raise ConfigError("bench.compile and bench.cuda_graph apply to the torch backend; use inference.backend=torch")


def prepare(model: nn.Module, plan: InferencePlan, bench: dict[str, Any], device: torch.device,
            checkpoint: str | None) -> Backend:
    """The inference backend for ``model`` as the plan and settings ask (compiled when asked)."""
    channels_last = None if bench["channels_last"] == "auto" else bool(bench["channels_last"])
    backend = select_backend(model, device, plan, checkpoint, channels_last=channels_last)
    if bench["compile"] and isinstance(backend, TorchBackend):
        backend.network = torch.compile(backend.network)
        backend.description += ", torch.compile"
    return backend


def sized_plan(plan: InferencePlan, backend: Backend, batch: int, height: int, width: int,
               device: torch.device) -> InferencePlan:
    """``plan`` with its tile decided for ``batch`` images of ``height`` x ``width``, as `retouch` decides it."""
    return replace(plan, tile=tile_for(plan, backend, height, width, batch, device))


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def benchmark(model: nn.Module, bench: dict[str, Any], device: torch.device, checkpoint: str | None = None,
              plan: InferencePlan | None = None) -> dict[str, Any]:
    """Every figure of the report for one model under ``plan`` (resolved with the ``bench`` option group
    applied; None = the native plan with it applied)."""
    check_bench_settings(bench, device)
    plan = plan or native_plan(model, bench, device, checkpoint or "the model")
    size, batch = bench["size"], bench["batch_size"]
    figures = model_figures(model, size)
    report: dict[str, Any] = {
        "device": str(device), "precision": plan.precision, "size": size, "batch_size": batch,
        "parameters": figures["params"], "size_mb_fp32": figures["mb_fp32"], "size_mb_fp16": figures["mb_fp16"],
        "gmacs": figures["gmacs"], "torch": torch.__version__,
    }
    _reset_peak(device)
    backend = prepare(model, plan, bench, device, checkpoint)
    timed = sized_plan(plan, backend, batch, size, size, device)
    report.update(backend=backend.description, compile=bool(bench["compile"]), cuda_graph=bool(bench["cuda_graph"]),
                  plan=timed.to_dict(), plan_text=timed.describe(size, size),
                  gmacs_plan=count_macs(model, (1, 3, size, size), timed) / 1e9)
    report["latency_ms"] = time_plan(backend, timed, bench, device, batch, size, size, bench["min_time_s"])
    report["latency_ms"]["warmup"] = bench["warmup"]
    peaks = {"latency": peak_memory_mb(device)}
    uhd_plan = sized_plan(plan, backend, 1, *UHD, device)
    uhd_gmacs = count_macs(model, (1, 3, *UHD), uhd_plan) / 1e9
    if bench["uhd"] is True or (bench["uhd"] == "auto" and uhd_gmacs <= UHD_AUTO_MAX_GMACS):
        _reset_peak(device)
        report["uhd"] = {"size": list(UHD), "gmacs": count_macs(model, (1, 3, *UHD)) / 1e9, "gmacs_plan": uhd_gmacs,
                         "plan_text": uhd_plan.describe(*UHD),
                         "latency_ms": time_plan(backend, uhd_plan, bench, device, 1, *UHD, bench["min_time_s"])}
        peaks["uhd"] = peak_memory_mb(device)
    if device.type == "cuda":
        _reset_peak(device)
        report["throughput"] = measure_throughput(backend, plan, bench, device)
        peaks["throughput"] = peak_memory_mb(device)
    else:  # on CPU images/s barely depends on the batch: derive it from the latency runs
        images_per_s = batch / (report["latency_ms"]["median"] / 1000.0)
        report["throughput"] = throughput_summary({str(batch): images_per_s}, [])
    report["memory"] = peak_memory_mb(device) if device.type != "cuda" else {  # a process peak on CPU
        f"{key}_{phase}": value for phase, figures in peaks.items() for key, value in figures.items()}
    report["gpu"] = gpu_info(device) if device.type == "cuda" else None
    report["budgets"] = check_budgets(report["latency_ms"]["median"], report["size_mb_fp32"],
                                      bench["budget_ms"], bench["budget_mb"])
    return report


def run_bench(options: dict[str, Any]) -> int:
    """Entry point of ``gan-retouch bench``; exit status 1 when a budget fails."""
    seed_everything(options["seed"])
    device = resolve_device(options["device"])
    bench = with_inference(options, "bench")
    check_bench_settings(bench, device)
    model, plan, description, checkpoint = load_bench_model(options, device)
    report = {"model": description, **benchmark(model, bench, device, checkpoint, plan)}
    if bench["json"]:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        console.print(report_table(report))
        for line in budget_lines(report["budgets"], report["size"]):
            console.print(line)
    return 0 if all(v["passed"] for v in report["budgets"]) else 1
