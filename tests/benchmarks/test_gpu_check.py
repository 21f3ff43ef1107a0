"""benchmarks/gpu_check.py on the CPU: the budget (rows planned, skipped with a reason, each written as it
finishes, workers killed with all they started), the GPU-only rows marked "no CUDA", and the row helpers (bench,
torchrun, peak keys, CUDA_VISIBLE_DEVICES) that the GPU rows use."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from benchmark_scripts import BENCHMARKS, benchmark_script

sys.path.insert(0, str(BENCHMARKS))
import gpu_children  # noqa: E402
import gpu_rows  # noqa: E402

SCRIPT = BENCHMARKS / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    with benchmark_script("gpu_check") as module:
        yield module


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not)."""
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCHMARKS.parent), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.slow
def test_a_60_s_budget_finishes_in_70_s_with_every_row_or_its_reason(tmp_path):
    rows_file = tmp_path / "rows.json"
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--budget-s", "60", "--json",
                             str(rows_file), "--out", str(tmp_path / "runs")], env=env(), capture_output=True,
                            text=True, timeout=120)
    assert time.monotonic() - started < 70, result.stdout
    data = json.loads(rows_file.read_text())
    assert data["complete"] and data["budget_s"] == 60
    rows = data["rows"]
    assert {row["check"] for row in rows} == {"train step", "torchrun", "inference", "onnx"}
    train = [row for row in rows if row["check"] == "train step"]
    assert len(train) == 7
    for row in train:
        gpu_only = any(word in row["setting"] for word in ("compile", "cudnn.benchmark", "fp16"))
        assert (row["status"] == "no CUDA") == gpu_only, row
        assert row["status"] != "ok" or (row["finite"] and row["ms"] > 0 and row["data_ms"] == 0)
    killed = [row for row in rows if row["status"].startswith("FAIL: killed at the section's limit")]
    for row in rows:  # every row ran, or says why not (on a crowded machine a slow row is killed at its limit)
        assert row in killed or row["status"] in ("ok", "no CUDA") or row["status"].startswith("skipped: "), row
    assert result.returncode == (1 if killed else 0), result.stdout + result.stderr
    assert "skipped" in result.stdout


def test_a_killed_check_leaves_its_finished_rows_and_no_worker(tmp_path):
    rows_file = tmp_path / "rows.json"
    check = subprocess.Popen([sys.executable, str(SCRIPT), "--device", "cpu", "--budget-s", "300", "--only",
                              "train,torchrun", "--json", str(rows_file), "--out", str(tmp_path / "runs")],
                             env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            rows = json.loads(rows_file.read_text())["rows"] if rows_file.exists() else []
            if any(row["status"] == "ok" for row in rows):
                break
            assert check.poll() is None, "the check ended before it was killed"
            time.sleep(0.2)
        workers = gpu_children.descendants(check.pid)
        assert workers, "a section runs in a worker process"
        check.kill()  # SIGKILL: no handler runs, as at a run's hard limit
        check.wait()
    finally:
        gpu_children.kill_tree(check.pid)
    data = json.loads(rows_file.read_text())
    assert not data["complete"]
    assert any(row["status"] == "ok" and row["ms"] > 0 for row in data["rows"]), data
    time.sleep(3)  # the worker sees its parent gone (it polls every 0.5 s) and ends with all it started
    assert not [pid for pid in workers if alive(pid)]


def test_a_timed_out_child_is_killed_with_what_it_started_in_other_sessions(tmp_path):
    """torchrun starts its workers in sessions of their own: killing the child's process group misses them."""
    pid_file = tmp_path / "grandchild.pid"
    script = ("import subprocess, sys, time\n"
              "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True)\n"
              f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
              "time.sleep(60)\n")
    with pytest.raises(subprocess.TimeoutExpired):
        gpu_children.run_child([sys.executable, "-c", script], dict(os.environ), timeout=3)
    grandchild = int(pid_file.read_text())
    time.sleep(0.3)
    assert not alive(grandchild)


def test_rows_that_do_not_fit_the_budget_are_skipped_with_the_reason(gpu_check, tmp_path):
    check = gpu_check.Check(torch.device("cpu"), budget_s=30.0, json_path=tmp_path / "rows.json", record=False)
    jobs = gpu_check.section_jobs("train", torch.device("cpu"), gpu_rows.CPU_SCALE, tmp_path)
    jobs[1].estimate = {"cpu": 100.0, "cuda": 100.0}
    chosen, planned = gpu_check.plan_section(jobs, check)
    assert chosen == [0, 2] and planned == gpu_check.STARTUP_S["cpu"] + 6.0
    rows = json.loads((tmp_path / "rows.json").read_text())["rows"]
    skipped = [row for row in rows if row["status"].startswith("skipped")]
    assert len(skipped) == 1 and "needs about 100 s" in skipped[0]["status"] and "--budget-s 30" in skipped[0]["status"]
    assert sum(row["status"] == "no CUDA" for row in rows) == 3  # cudnn.benchmark x2 and fp16: CUDA only


def test_a_worker_that_dies_gives_fail_rows_naming_its_last_line(gpu_check, tmp_path):
    check = gpu_check.Check(torch.device("cpu"), budget_s=60.0, json_path=None, record=False)
    base = [sys.executable, "-c", "import sys; print('boom: the reason'); sys.exit(3)"]
    gpu_check.run_section("train", check, base, gpu_rows.CPU_SCALE, tmp_path)
    failed = [row for row in check.rows if row.status.startswith("FAIL")]
    assert len(failed) == 3 and all("exited with status 3: boom: the reason" in row.status for row in failed)


def test_inference_rows_take_the_peak_of_their_own_phase():
    """bench writes cuda_max_allocated_mb_{latency,uhd,throughput} on CUDA, not cuda_max_allocated_mb."""
    report = {"latency_ms": {"median": 2.0, "runs": 50}, "uhd": {"latency_ms": {"median": 16.0, "runs": 20}},
              "backend": "torch", "memory": {"cuda_max_allocated_mb_latency": 120.0, "cuda_max_allocated_mb_uhd": 900.0,
                                             "cuda_max_allocated_mb_throughput": 130.0}}
    rows = gpu_rows.inference_rows_of(report, "student fp16")
    assert [row.peak_mb for row in rows] == [120.0, 900.0]
    assert [row.images_per_s for row in rows] == [500.0, 62.5]


@pytest.mark.parametrize(("index", "current", "expected"), [
    (1, None, "1"), (0, "", "0"), (1, "4,6", "6"), (0, "GPU-1a2b,GPU-3c4d", "GPU-1a2b"), (None, "3", "3")])
def test_a_child_sees_the_gpu_its_parent_means_also_under_slurm(index, current, expected):
    assert gpu_children.visible_devices(index, current) == expected


def test_a_gpu_index_beyond_the_visible_ones_is_an_error():
    with pytest.raises(ValueError, match="shows 2 GPU"):
        gpu_children.visible_devices(2, "4,6")


def test_its_bench_helper_reads_the_json_of_gan_retouch_bench():
    entry = gpu_rows.recipe_generator("distill", "student")
    report = gpu_rows.bench_report(entry["name"], {**entry["args"], "width": 8}, torch.device("cpu"), 32, "fp32",
                                   cuda_graph=False, uhd=False, deadline=time.time() + 600, min_time_s=0.05)
    assert report["size"] == 32 and report["precision"] == "fp32" and report["latency_ms"]["median"] > 0


@pytest.mark.slow
def test_its_torchrun_helper_trains_resumes_and_reads_the_log(tmp_path):
    """A one-process torchrun run (gloo here, NCCL on a GPU) trains 2 steps, then resumes to 3."""
    row = gpu_rows.torchrun_row(torch.device("cpu"), gpu_rows.CPU_SCALE, tmp_path, time.time() + 900)
    assert row.status == "ok" and row.finite and row.ms > 0 and row.data_ms >= 0, row
    assert "gloo" in row.setting and "step 2, then 3" in row.note


def test_a_row_whose_packages_are_missing_is_skipped_without_a_worker(gpu_check, tmp_path):
    """The GPU machine has no onnxruntime: the onnx row says so at once instead of spending its estimate."""
    check = gpu_check.Check(torch.device("cpu"), budget_s=300.0, json_path=None, record=False)
    jobs = gpu_check.section_jobs("torchrun", torch.device("cpu"), gpu_rows.CPU_SCALE, tmp_path)
    jobs[0].needs = ("no_such_module_here", "json")
    chosen, _ = gpu_check.plan_section(jobs, check)
    assert chosen == [] and check.rows[0].status == "skipped: no_such_module_here not installed"
    onnx = gpu_check.section_jobs("onnx", torch.device("cpu"), gpu_rows.CPU_SCALE, tmp_path)[0]
    assert onnx.needs == ("onnxscript", "onnxruntime")
