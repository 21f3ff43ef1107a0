"""DDP on CPU: two gloo processes under torchrun end with identical weights and a decreasing loss."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch


def test_two_gloo_ranks_train_in_lockstep(tmp_path):
    worker = Path(__file__).parent / "ddp_worker.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        # --standalone: torchrun picks a free local port and address (a fixed port can still be in use)
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker), str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rank0, rank1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    for part in ("g", "d"):
        for key, value in rank0[part].items():
            torch.testing.assert_close(value, rank1[part][key], rtol=0, atol=0, msg=f"{part}.{key}")
    log = [json.loads(line) for line in (tmp_path / "tiny" / "log.jsonl").read_text().splitlines()]
    losses = [record["l1"] for record in log if "l1" in record]
    assert len(losses) == 6
    assert losses[-1] < losses[0]
    assert json.loads((tmp_path / "metrics0.json").read_text()) == json.loads((tmp_path / "metrics1.json").read_text())
