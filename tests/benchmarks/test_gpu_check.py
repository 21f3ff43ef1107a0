"""benchmarks/gpu_check.py on the CPU: the GPU-only rows say "no CUDA" and the tiny training rows run; its bench
and torchrun helpers (the GPU rows' code) run here too, on the CPU and with gloo."""

import json

import pytest
import torch
from benchmark_scripts import benchmark_script


@pytest.fixture(scope="module")
def gpu_check():
    with benchmark_script("gpu_check") as module:
        yield module


def test_gpu_check_runs_on_the_cpu_and_marks_the_gpu_rows(gpu_check, tmp_path):
    rows_file = tmp_path / "rows.json"
    assert gpu_check.main(["--device", "cpu", "--out", str(tmp_path), "--json", str(rows_file)]) == 0
    rows = json.loads(rows_file.read_text())
    train = [row for row in rows if row["check"] == "train step"]
    assert len(train) == 8 and len([row for row in rows if row["check"] == "inference"]) == 8
    for row in train:
        if "compile" in row["setting"]:
            assert row["status"] == "no CUDA"
        else:
            assert row["status"] == "ok" and row["finite"] and row["ms"] > 0, row
    assert {row["status"] for row in rows if row["check"] != "train step"} == {"no CUDA"}
    assert {row["check"] for row in rows} == {"train step", "torchrun", "inference", "onnx"}


def test_its_bench_helper_reads_the_json_of_gan_retouch_bench(gpu_check):
    entry = gpu_check.recipe_generator("distill", "student")
    report = gpu_check.bench_report(entry["name"], {**entry["args"], "width": 8}, torch.device("cpu"), 32, "fp32",
                                    cuda_graph=False, uhd=False, min_time_s=0.05)
    assert report["size"] == 32 and report["precision"] == "fp32" and report["latency_ms"]["median"] > 0


@pytest.mark.slow
def test_its_torchrun_helper_trains_resumes_and_reads_the_log(gpu_check, tmp_path):
    """A one-process torchrun run (gloo here, NCCL on a GPU) trains 2 steps, then resumes to 3."""
    row = gpu_check.torchrun_row(torch.device("cpu"), gpu_check.CPU_SCALE, tmp_path)
    assert row.status == "ok" and row.finite and row.ms > 0, row
    assert "gloo" in row.setting and "step 2, then 3" in row.note
