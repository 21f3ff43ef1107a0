"""`gan-retouch bench`: sane figures for a tiny model on CPU, budget verdicts, and clear errors."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import gan_retouch.nets  # noqa: F401  (registers the generators)
from gan_retouch.cli import main
from gan_retouch.config import resolve, with_inference
from gan_retouch.config.renames import PLAN_FIELDS
from gan_retouch.deploy import bench_timing
from gan_retouch.deploy.bench import benchmark, load_bench_model, run_bench
from gan_retouch.deploy.bench_report import check_budgets
from gan_retouch.deploy.retouch import load_plan
from gan_retouch.engine.checkpoint import save_checkpoint
from gan_retouch.errors import CheckpointError, ConfigError
from gan_retouch.inference.profile import count_macs
from gan_retouch.registry import GENERATORS

STUDENT = {"width": 4, "depth": 1, "levels": 2}
QUICK = {"size": 32, "warmup": 1, "min_time_s": 0.05}


def bench_options(**bench: object) -> dict:
    """Resolved bench options; ``bench`` holds bench.* and inference.* values, and the returned ``bench`` group
    has the inference fields added, as ``run_bench`` passes it."""
    plan = {key: bench.pop(key) for key in list(bench) if key in PLAN_FIELDS}
    overrides = {"device": "cpu", "bench": {**QUICK, **bench}, "inference": {"backend": "torch", **plan}}
    options, _ = resolve("bench", overrides=overrides)
    return {**options, "bench": with_inference(options, "bench")}


def test_tiny_student_on_cpu_gives_sane_figures() -> None:
    model = GENERATORS.build("student", **STUDENT)
    expected_parameters = sum(p.numel() for p in model.parameters())
    report = benchmark(model, bench_options()["bench"], torch.device("cpu"))
    assert report["parameters"] == expected_parameters
    assert report["size_mb_fp32"] == pytest.approx(2 * report["size_mb_fp16"], rel=0.01)
    assert report["gmacs"] > 0
    latency = report["latency_ms"]
    assert latency["runs"] >= 1 and report["backend"].startswith("torch fp32 on cpu, BatchNorm folded")
    assert report["uhd"]["size"] == [2160, 3840] and report["uhd"]["latency_ms"]["median"] > latency["median"]
    assert 0 < latency["min"] <= latency["median"] <= latency["p90"]
    assert report["throughput"]["images_per_s"] == pytest.approx(1000.0 / latency["median"])
    assert report["memory"]["cpu_peak_rss_mb"] > 10
    assert report["gpu"] is None
    assert report["budgets"] == []


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precisions_need_cuda_as_in_retouch(precision: str) -> None:
    model = GENERATORS.build("autoretouch", ngf=4, n_blocks=1)
    with pytest.raises(ConfigError, match=f"inference.precision={precision} needs a CUDA device; use fp32 on cpu"):
        benchmark(model, bench_options(precision=precision, uhd=False)["bench"], torch.device("cpu"))


def test_bench_times_the_plan_retouch_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = {"width": 4, "blocks": 1, "context": 1, "edit_mask": True, "edit_floor": 0.3}
    generator = GENERATORS.build("student_fast", **args)
    entry = {"name": "student_fast", "args": args, "state_dict": generator.state_dict()}
    inference = {"work_size": 64, "coarse_pass": True, "edit_floor": 0.3}
    checkpoint = save_checkpoint({"kind": "train", "options": {}, "generator": entry, "inference": inference},
                                 tmp_path / "s.pt")
    timed = []
    real_run_plan = bench_timing.run_plan

    def recording_run_plan(plan, network, images, mask=None, fallback=True):
        timed.append((plan, type(network).__name__, tuple(images.shape)))
        return real_run_plan(plan, network, images, mask, fallback)

    monkeypatch.setattr(bench_timing, "run_plan", recording_run_plan)
    options = bench_options(checkpoint=str(checkpoint), size=256, uhd=False)
    model, plan, _, path = load_bench_model(options, torch.device("cpu"))
    report = benchmark(model, options["bench"], torch.device("cpu"), path, plan)
    retouch_options = resolve("retouch", overrides={"retouch": {"checkpoint": str(checkpoint)}})[0]
    retouch_settings = {**with_inference(retouch_options, "retouch"), "backend": "torch"}
    _, retouch_plan, _ = load_plan(retouch_settings, torch.device("cpu"))
    expected = replace(retouch_plan, tile=0)  # the tile retouch decides for a 256 px image: whole
    assert {plan for plan, _, _ in timed} == {expected}  # every timed call ran retouch's plan
    assert {(name, shape) for _, name, shape in timed} == {("TorchBackend", (1, 3, 256, 256))}
    assert report["plan"] == expected.to_dict() and "work size 64 px" in report["plan_text"]
    assert "coarse pass at 32x32" in report["plan_text"]
    # MACs under the plan: the network at 64x64 plus its coarse pass at 32x32, not at the 256x256 input
    assert report["gmacs_plan"] * 1e9 == pytest.approx(count_macs(model, (1, 3, 64, 64)) + count_macs(model, (1, 3, 32, 32)))
    assert report["gmacs"] * 1e9 == pytest.approx(count_macs(model, (1, 3, 256, 256)))


def test_mask_guided_model_is_timed_with_a_stand_in_mask() -> None:
    model = GENERATORS.build("gated", ngf=4, dilations=[2])
    report = benchmark(model, bench_options(uhd=False)["bench"], torch.device("cpu"))
    assert report["latency_ms"]["median"] > 0 and report["gmacs"] > 0


def test_budget_verdicts() -> None:
    assert check_budgets(12.0, 3.0, None, None) == []
    verdicts = check_budgets(12.0, 3.0, 50.0, 2.5)
    assert [(v["name"], v["passed"]) for v in verdicts] == [("latency", True), ("size", False)]
    assert check_budgets(50.0, 10.0, 50.0, 10.0)[0]["passed"]  # the limit itself passes
    with pytest.raises(ConfigError, match="positive"):
        check_budgets(1.0, 1.0, 0.0, None)


def test_cli_json_and_budget_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    generator = GENERATORS.build("student", **STUDENT)
    entry = {"name": "student", "args": STUDENT, "state_dict": generator.state_dict()}
    checkpoint = save_checkpoint({"kind": "train", "options": {}, "generator": entry}, tmp_path / "s.pt")
    quick = ["--set", "bench.warmup=0", "bench.min_time_s=0.05", "bench.uhd=false", "--size", "32", "--device", "cpu"]
    status = main(["bench", "--checkpoint", str(checkpoint), "--json", "--budget-mb", "10", *quick])
    report = json.loads(capsys.readouterr().out)
    assert status == 0
    assert report["parameters"] == sum(p.numel() for p in generator.parameters())
    assert report["budgets"][0]["passed"] is True
    assert main(["bench", "--checkpoint", str(checkpoint), "--budget-ms", "1e-6", *quick]) == 1
    assert "FAIL latency budget" in capsys.readouterr().out


def test_bad_inputs_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown generator 'studnet'.*student"):
        run_bench(bench_options(model="studnet"))
    with pytest.raises(CheckpointError, match="not found"):
        run_bench(bench_options(checkpoint=str(tmp_path / "missing.pt")))
    with pytest.raises(ConfigError, match="exactly one"):
        run_bench(bench_options())
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        run_bench(bench_options(model="student", cuda_graph=True))
    with pytest.raises(ConfigError, match="inference.precision"):
        run_bench(bench_options(model="student", precision="int8"))
    with pytest.raises(ConfigError, match="bench.min_time_s"):
        run_bench(bench_options(model="student", min_time_s=0))
    with pytest.raises(ConfigError, match="inference.backend"):
        run_bench(bench_options(model="student", backend="tensorrt"))
