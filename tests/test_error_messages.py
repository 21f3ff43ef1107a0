"""Error messages for files that are not what they claim, NaN weights, warnings and torch's CUDA line: each one
line that names the file and the fix."""

import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from engine_utils import tiny_options

import gan_retouch.deploy.bench as bench_module
from gan_retouch.cli import main
from gan_retouch.config import resolve
from gan_retouch.engine.checkpoint import load_checkpoint, save_checkpoint
from gan_retouch.errors import CheckpointError
from gan_retouch.registry import GENERATORS
from gan_retouch.train import build_training


def checkpoint_of(path: Path, name: str, args: dict, poison: bool = False) -> Path:
    net = GENERATORS.build(name, **args)
    state = net.state_dict()
    if poison:
        state = {k: torch.full_like(v, math.nan) if v.is_floating_point() else v for k, v in state.items()}
    entry = {"name": name, "args": args, "state_dict": state}
    return save_checkpoint({"kind": "train", "options": resolve("train")[0], "generator": entry, "step": 3}, path)


def test_a_text_file_a_folder_and_a_torchscript_file_are_named_for_what_they_are(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello\nworld\n")
    with pytest.raises(CheckpointError, match=r"notes.txt: not a PyTorch file, or a truncated or damaged one "
                                              r"\(\w+\); give the .pt file a gan-retouch run saved$"):
        load_checkpoint(tmp_path / "notes.txt")
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(CheckpointError, match="empty_run is a folder without best.pt or latest.pt"):
        load_checkpoint(tmp_path / "empty_run")
    net = GENERATORS.build("autoretouch", ngf=4, n_blocks=1).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.trace(net, torch.rand(1, 3, 16, 16)).save(str(tmp_path / "best.ts"))
        with pytest.raises(CheckpointError) as refused:
            load_checkpoint(tmp_path / "best.ts")
    assert "best.ts is a TorchScript export (gan-retouch export), not a checkpoint" in str(refused.value)
    assert "weights_only" not in str(refused.value)


def test_the_architecture_hint_works_when_followed_as_printed(tmp_path: Path) -> None:
    student = checkpoint_of(tmp_path / "student.pt", "student", {"width": 8, "edit_mask": True})
    options = tiny_options(tmp_path, f"model.generator.init={student}")
    with pytest.raises(CheckpointError) as refused:
        build_training(options)
    hint = str(refused.value).split("--set ", 1)[1].split(")", 1)[0].split()
    assert "model.generator.name=student" in hint and "model.generator.args.ngf=null" in hint
    assert "model.generator.args.n_blocks=null" in hint
    loop = build_training(tiny_options(tmp_path, f"model.generator.init={student}", "name=followed", *hint))
    assert type(loop.model.generator).__name__.lower().startswith("student")


def test_nan_init_weights_are_refused_naming_the_tensor_not_the_learning_rate(tmp_path: Path) -> None:
    poisoned = checkpoint_of(tmp_path / "nan.pt", "autoretouch", {"ngf": 4, "n_blocks": 1, "residual": True},
                             poison=True)
    with pytest.raises(CheckpointError) as refused:
        build_training(tiny_options(tmp_path, f"model.generator.init={poisoned}"))
    message = str(refused.value)
    assert message.startswith(f"model.generator.init: {poisoned} holds non-finite weights: head.0.weight")
    assert "train.lr" not in message


def test_a_warning_is_one_line_once_without_its_source_line(monkeypatch, capsys) -> None:
    def warns_twice(options):
        warnings.warn("data.alignment: a.png and b.png do not line up", stacklevel=2)
        warnings.warn("data.alignment: a.png and b.png do not line up", stacklevel=1)  # another calling line
        return 0

    monkeypatch.setattr(bench_module, "run_bench", warns_twice)
    assert main(["bench", "--model", "student"]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("warning: data.alignment: a.png and b.png do not line up") == 1
    assert "warns_twice" not in captured.out + captured.err and "UserWarning" not in captured.out + captured.err


def test_torchs_no_cuda_runtime_line_is_not_shown(tmp_path: Path) -> None:
    """The latency timer of bench and of the backend probe, on a machine with a CUDA toolkit and no GPU."""
    env = {**os.environ, "CUDA_HOME": str(tmp_path), "CUDA_VISIBLE_DEVICES": ""}
    code = "from gan_retouch.inference.profile import measure_latency; print(measure_latency(lambda: None, 0.01))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0 and "median" in result.stdout, result.stderr[-2000:]
    assert "No CUDA runtime is found" not in result.stdout + result.stderr
