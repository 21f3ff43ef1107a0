"""benchmarks/gpu_run.sh, the command docs/gpu.md gives for the first GPU run, run here on the CPU.

pip is replaced by a shim that records its arguments (the tests never install anything nor touch the network),
so the test checks what the script asks of pip: only the carried wheels, no index, no dependencies."""

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmark_scripts import BENCHMARKS

REPO = BENCHMARKS.parent
DOCS = REPO / "docs" / "gpu.md"


def checkout(tmp_path: Path, wheels: bool = True) -> tuple[Path, dict[str, str]]:
    """A stand-in repository root (links to the real code) with a python shim whose pip only logs."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("benchmarks", "gan_retouch", "options", "recipes"):
        (root / name).symlink_to(REPO / name)
    if wheels:
        (root / "wheels").mkdir()
        for name in ("lpips-0.1.4-py3-none-any.whl", "pytorch_msssim-1.0.0-py3-none-any.whl"):
            (root / "wheels" / name).write_bytes(b"")
    shim = tmp_path / "python"
    shim.write_text(f'#!/bin/sh\nif [ "$1" = -m ] && [ "$2" = pip ]; then echo "$@" >> "{tmp_path}/pip_calls"; '
                    f'exit 0; fi\nexec {sys.executable} "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PYTHON": str(shim), "DEVICE": "cpu", "BUDGET_S": "300", "OUT": str(tmp_path / "out"),
           "PYTHONPATH": str(REPO), "ONLY": "onnx,inference"}  # no worker: "no CUDA" rows, whatever the load
    return root, env


def test_the_documented_command_installs_from_wheels_only_and_leaves_the_rows_in_out(tmp_path):
    root, env = checkout(tmp_path)
    result = subprocess.run(["bash", "benchmarks/gpu_run.sh"], cwd=root, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = (tmp_path / "pip_calls").read_text().splitlines()
    assert calls[0].split() == ["-m", "pip", "install", "--no-index", "--no-deps",
                                "wheels/lpips-0.1.4-py3-none-any.whl", "wheels/pytorch_msssim-1.0.0-py3-none-any.whl"]
    assert calls[1].split() == ["-m", "pip", "install", "--no-index", "--no-deps", "--no-build-isolation", "-e", "."]
    data = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert data["complete"] and data["budget_s"] == 300 and data["rows"]
    assert "gpu_check on cpu" in (tmp_path / "out" / "gpu_check.log").read_text()
    assert not list((tmp_path / "out").rglob("*.pt"))


def test_without_wheels_it_says_what_to_do_and_installs_nothing(tmp_path):
    root, env = checkout(tmp_path, wheels=False)
    result = subprocess.run(["bash", "benchmarks/gpu_run.sh"], cwd=root, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2 and "wheels/ holds no .whl files" in result.stdout
    assert not (tmp_path / "pip_calls").exists()


def test_docs_give_that_command_with_the_wheels_copied_and_carried():
    text = DOCS.read_text()
    assert "cp ../shared/wheels/*.whl wheels/" in text and "bash benchmarks/gpu_run.sh" in text
    assert "carry" in text and "BUDGET_S=420" in text
