"""Inference figures of the default teacher (`autoretouch`) and the default `student`.

Prints parameters, MB (fp32, 1 MB = 1e6 bytes), GMACs and CPU latency (median of --runs after --warmup) at each
size, and the teacher/student CPU latency ratio at the largest size. With CUDA present it also prints GPU
figures: fp16, channels_last, CUDA events, median of --gpu-runs (>= 100) runs.

    python benchmarks/bench_inference.py                       # 256, 512, 1024 on CPU (+ GPU when present)
    python benchmarks/bench_inference.py --sizes 256 --runs 3  # a quick look
"""

from __future__ import annotations

import argparse
import platform

import torch

import gan_retouch.nets  # noqa: F401  (registers the generators)
from gan_retouch.config import option_defaults
from gan_retouch.deploy.bench import benchmark
from gan_retouch.registry import GENERATORS

MODELS = ("autoretouch", "student")  # default arguments: the paper's teacher and the default student


def bench_settings(size: int, **overrides: object) -> dict:
    """The documented `bench` defaults with this size and the given overrides."""
    return {**option_defaults("bench")["bench"], "size": size, **overrides}


def run(device: torch.device, sizes: list[int], precision: str, warmup: int, runs: int) -> dict[tuple[str, int], dict]:
    """Report per (model, size); prints one line each."""
    reports = {}
    for name in MODELS:
        model = GENERATORS.build(name).eval()
        for size in sizes:
            settings = bench_settings(size, precision=precision, warmup=warmup, runs=runs, throughput_batches=[1])
            report = benchmark(model, settings, device)
            reports[(name, size)] = report
            latency = report["latency_ms"]
            print(f"{name:12s} {device.type:4s} {precision:4s} {size:5d}px  params {report['parameters']:>9,}  "
                  f"{report['size_mb_fp32']:6.2f} MB  {report['gmacs']:8.2f} GMACs  "
                  f"median {latency['median']:9.2f} ms  p90 {latency['p90']:9.2f} ms  ({latency['runs']} runs)",
                  flush=True)
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--warmup", type=int, default=1, help="CPU untimed runs")
    parser.add_argument("--runs", type=int, default=3, help="CPU timed runs")
    parser.add_argument("--gpu-runs", type=int, default=100, help="GPU timed runs")
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU figures")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} CPU threads")
    largest = max(args.sizes)
    if not args.no_cpu:
        cpu = run(torch.device("cpu"), args.sizes, "fp32", args.warmup, args.runs)
        ratio = cpu[("autoretouch", largest)]["latency_ms"]["median"] / cpu[("student", largest)]["latency_ms"]["median"]
        print(f"CPU latency ratio teacher / student at {largest}x{largest}: {ratio:.1f}x")
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name(0)}")
        gpu = run(torch.device("cuda:0"), args.sizes, "fp16", 10, args.gpu_runs)
        ratio = gpu[("autoretouch", largest)]["latency_ms"]["median"] / gpu[("student", largest)]["latency_ms"]["median"]
        print(f"GPU fp16 latency ratio teacher / student at {largest}x{largest}: {ratio:.1f}x")
    else:
        print("no CUDA device: GPU figures skipped")


if __name__ == "__main__":
    main()
