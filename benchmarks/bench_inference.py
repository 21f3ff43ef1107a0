"""Inference figures of the AutoRetouch teacher, the depthwise `student` and the default `student_fast`, in one run.

For each model: parameters, MB (fp32, 1 MB = 1e6 bytes), GMACs and latency at 1024x1024 and 3840x2160 (4K UHD),
through the path `gan-retouch retouch` uses (`deploy.backends`: BatchNorm folded, the faster memory format on
CPU), timed by `inference.profile.measure_latency` (torch.utils.benchmark.Timer). Then, per model, the speed-up over
the teacher and the ratio to its MAC floor: latency / (GMACs / the teacher's measured GMAC/s), i.e. how far the
model is from running its MACs as efficiently as the teacher does (1.0 = as efficient; the goal is <= 2).
With CUDA present it also prints the same figures on the GPU in fp16 (channels_last; CUDA is synchronised).

    python benchmarks/bench_inference.py                          # CPU (+ GPU when present), teacher 1024 only
    python benchmarks/bench_inference.py --teacher-4k --json r.json

It records one table per device in benchmarks/results/bench_inference.json (docs/results.md) unless --no-record.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

import gan_retouch.nets  # noqa: F401  (registers the generators)
from gan_retouch.config import option_defaults
from gan_retouch.deploy.bench import benchmark
from gan_retouch.registry import GENERATORS

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results.py, also when loaded by file path
from results import record, table  # noqa: E402

MODELS = ("autoretouch", "student", "student_fast")  # default arguments: the paper's teacher and both students


def settings(min_time_s: float, uhd: bool, precision: str) -> dict:
    """The documented `bench` defaults (with the inference plan's) at 1024 px with these timing settings (torch
    backend, as retouch picks)."""
    defaults = option_defaults("bench")
    return {**defaults["inference"], **defaults["bench"], "size": 1024, "min_time_s": min_time_s, "uhd": uhd,
            "precision": precision, "backend": "torch", "throughput_batches": [1]}


def run(device: torch.device, precision: str, min_time_s: float, teacher_time_s: float,
        teacher_4k: bool) -> dict[str, dict]:
    """One report per model, printed as it comes."""
    reports = {}
    for name in MODELS:
        teacher = name == "autoretouch"
        model = GENERATORS.build(name).eval()
        report = benchmark(model, settings(teacher_time_s if teacher else min_time_s,
                                           teacher_4k or not teacher, precision), device)
        reports[name] = report
        uhd = report.get("uhd")
        uhd_text = f"4K {uhd['latency_ms']['median']:9.0f} ms ({uhd['gmacs']:7.1f} GMACs)" if uhd else "4K skipped"
        print(f"{name:12s} {device.type} {precision}  params {report['parameters']:>9,}  "
              f"{report['size_mb_fp32']:6.2f} MB  1024px {report['gmacs']:7.1f} GMACs "
              f"{report['latency_ms']['median']:9.0f} ms ({report['latency_ms']['runs']} runs)  {uhd_text}  "
              f"[{report['backend']}]", flush=True)
    return reports


def ratios(reports: dict[str, dict]) -> list[list[str]]:
    """Speed-up over the teacher and ratio to the MAC floor at 1024 px (and 4K when the teacher was timed),
    printed; returned as the rows of the recorded table."""
    teacher = reports["autoretouch"]
    rate = teacher["gmacs"] / (teacher["latency_ms"]["median"] / 1000.0)
    print(f"teacher throughput: {rate:.1f} GMAC/s at 1024x1024 (the MAC floor of a model = its GMACs / this)")
    rows = []
    for name, report in reports.items():
        ms = report["latency_ms"]["median"]
        floor_ms = report["gmacs"] / rate * 1000.0
        line = (f"{name:12s} 1024px: {teacher['latency_ms']['median'] / ms:6.1f}x faster than the teacher, "
                f"{ms / floor_ms:4.2f}x its MAC floor ({floor_ms:.0f} ms)")
        uhd = report.get("uhd")
        if uhd:
            uhd_ms = uhd["latency_ms"]["median"]
            line += f"; 4K: {uhd_ms / 1000:.2f} s, {uhd_ms / (uhd['gmacs'] / rate * 1000.0):4.2f}x its MAC floor"
        print(line)
        rows.append([name, f"{report['parameters']:,}", f"{report['size_mb_fp32']:.2f}",
                     f"{report['gmacs']:.1f} / {uhd['gmacs']:.1f}" if uhd else f"{report['gmacs']:.1f} / -",
                     f"{ms:,.0f} ms ({report['latency_ms']['runs']} runs)",
                     f"{uhd['latency_ms']['median']:,.0f} ms" if uhd else "not run",
                     f"{teacher['latency_ms']['median'] / ms:.1f}x",
                     f"{ms / floor_ms:.2f} / " + (f"{uhd['latency_ms']['median'] / (uhd['gmacs'] / rate * 1000.0):.2f}"
                                                  if uhd else "-")])
    return rows


COLUMNS = ["model (defaults)", "params", "MB fp32", "GMACs 1024 / 4K", "1024x1024", "3840x2160", "vs teacher (1024)",
           "/ MAC floor 1024 / 4K"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--min-time", type=float, default=3.0, help="seconds of timed runs per student input")
    parser.add_argument("--teacher-time", type=float, default=0.1, help="seconds of timed runs per teacher input "
                        "(the teacher takes ~20 s per 1024 px image on a 2-core CPU: one timed run)")
    parser.add_argument("--teacher-4k", action="store_true", help="also time the teacher at 4K (minutes on CPU)")
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU figures")
    parser.add_argument("--json", help="also write every report to this JSON file")
    parser.add_argument("--no-record", action="store_true", help="print only; do not write benchmarks/results/")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} CPU threads")
    results, tables = {}, []
    if not args.no_cpu:
        results["cpu"] = run(torch.device("cpu"), "fp32", args.min_time, args.teacher_time, args.teacher_4k)
        tables.append(table(f"CPU fp32, {torch.get_num_threads()} threads, batch 1, random weights and images, "
                            "through the path retouch runs", COLUMNS, ratios(results["cpu"])))
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name(0)}")
        results["cuda"] = run(torch.device("cuda:0"), "fp16", args.min_time, args.min_time, True)
        tables.append(table(f"{torch.cuda.get_device_name(0)} fp16, channels_last, batch 1", COLUMNS,
                            ratios(results["cuda"])))
    else:
        print("no CUDA device: GPU figures skipped")
    if tables and not args.no_record:
        devices = " and ".join(["CPU"] * (not args.no_cpu) + ["GPU"] * torch.cuda.is_available())
        record("bench_inference", tables, title=f"Teacher and students at 1024 px and 4K, {devices}",
               notes=["MAC floor = a model's GMACs / the teacher's measured GMAC/s in the same run."])
    if args.json:
        with open(args.json, "w", encoding="utf-8") as stream:
            json.dump(results, stream, indent=2)


if __name__ == "__main__":
    main()
