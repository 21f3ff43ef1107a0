"""DDP on CPU: two gloo processes under torchrun (tests/ddp_worker.py runs one scenario per launch)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from gan_retouch.engine.checkpoint import save_checkpoint
from gan_retouch.registry import GENERATORS


def run_two_ranks(root: Path, scenario: str) -> subprocess.CompletedProcess:
    worker = Path(__file__).parents[1] / "ddp_worker.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        # --standalone: torchrun picks a free local port and address (a fixed port can still be in use)
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker),
         str(root), scenario],
        capture_output=True, text=True, env=env, timeout=300,
    )


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def assert_same_weights(root: Path, with_batchnorm_statistics: bool = True) -> None:
    """Both ranks hold the same weights (BatchNorm statistics agree only after validation synchronised them)."""
    rank0, rank1 = torch.load(root / "rank0.pt"), torch.load(root / "rank1.pt")
    for part in rank0:
        for key, value in rank0[part].items():
            if not with_batchnorm_statistics and ("running_" in key or "num_batches" in key):
                continue
            torch.testing.assert_close(value, rank1[part][key], rtol=0, atol=0, msg=f"{part}.{key}")


def test_two_gloo_ranks_train_in_lockstep(tmp_path):
    assert_ok(run_two_ranks(tmp_path, "lockstep"))
    assert_same_weights(tmp_path)
    log = [json.loads(line) for line in (tmp_path / "tiny" / "log.jsonl").read_text().splitlines()]
    losses = [record["l1"] for record in log if "l1" in record]
    assert len(losses) == 6
    assert losses[-1] < losses[0]
    assert json.loads((tmp_path / "metrics0.json").read_text()) == json.loads((tmp_path / "metrics1.json").read_text())


def test_a_nan_on_one_rank_is_skipped_or_stops_on_every_rank(tmp_path):
    """Rank 1 alone sees NaN at steps 2, 4, 5; both ranks skip 2 and 4 and stop at 5 (one skip in a row allowed).
    Before, rank 1 skipped its backward while rank 0 ran its all-reduce: rank 1 died with SIGABRT."""
    assert_ok(run_two_ranks(tmp_path, "nan"))
    results = [json.loads((tmp_path / f"result{rank}.json").read_text()) for rank in (0, 1)]
    for result in results:
        assert result["means"] == {"l1": 2.0}  # rank 1's empty log window still took part in the all-reduce
        assert result["step"] == 4
        assert "non-finite loss at step 5" in result["stopped"] and "l1 (rank 1)" in result["stopped"]
    assert_same_weights(tmp_path, with_batchnorm_statistics=False)  # stopped before the final validation
    log = [json.loads(line) for line in (tmp_path / "tiny" / "log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log if "l1" in record] == [1, 3]  # the skipped steps logged nothing
    assert torch.load(tmp_path / "tiny" / "latest.pt", weights_only=False)["step"] == 4


def test_a_generator_with_parameters_without_gradient_trains_under_ddp(tmp_path):
    """u2net_lite without its mask terms: its mask head gets no gradient (before: failed at step 2)."""
    result = run_two_ranks(tmp_path, "unused")
    assert_ok(result)
    assert "find_unused_parameters=True" in result.stdout
    assert_same_weights(tmp_path)


def test_two_rank_distillation_writes_its_report(tmp_path):
    """The teacher is scored by every rank while the process group lives (before: crashed at the report)."""
    model = GENERATORS.build("autoretouch", ngf=8, n_blocks=1, edit_mask=True)
    entry = {"name": "autoretouch", "args": {"ngf": 8, "n_blocks": 1, "edit_mask": True},
             "state_dict": model.state_dict()}
    save_checkpoint({"kind": "train", "generator": entry}, tmp_path / "teacher.pt")
    assert_ok(run_two_ranks(tmp_path, "distill"))
    assert [(tmp_path / f"exit{rank}.txt").read_text() for rank in (0, 1)] == ["0", "0"]
    report = json.loads((tmp_path / "ck" / "student" / "distill_report.json").read_text())
    teacher, student = report["rows"]["teacher"], report["rows"]["student"]
    assert teacher["psnr"] > 0 and student["psnr"] > 0 and teacher["cpu_ms"] > 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def run_two_nodes(root: Path, steps: int, resume: str) -> None:
    """`torchrun --nnodes 2 --node-rank 0|1`, one gloo rank per "node", a c10d rendezvous on localhost."""
    worker = Path(__file__).parents[1] / "ddp_worker.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    port, run_id = free_port(), f"nodes{steps}"
    nodes = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node-rank={node}", "--nproc-per-node=1",
         "--rdzv-backend=c10d", f"--rdzv-endpoint=localhost:{port}", f"--rdzv-id={run_id}", str(worker), str(root),
         "node", str(steps), resume],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) for node in (0, 1)]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    for node, output in zip(nodes, outputs, strict=True):
        assert node.returncode == 0, output[-3000:]


def test_two_nodes_without_a_shared_disk_train_resume_and_agree(tmp_path):
    """Each node has its own run folder: only node 0's holds the checkpoints. On --resume rank 0 decides and
    gives the checkpoint to rank 1 (before, rank 1 found no latest.pt in its folder and started again at step 0)."""
    run_two_nodes(tmp_path, 4, "null")
    run_two_nodes(tmp_path, 6, "auto")
    assert (tmp_path / "node0" / "tiny" / "latest.pt").is_file()
    assert not (tmp_path / "node1" / "tiny" / "latest.pt").exists()
    assert torch.load(tmp_path / "node0" / "tiny" / "latest.pt", weights_only=False)["step"] == 6
    for rank in (0, 1):
        assert json.loads((tmp_path / f"node_rank{rank}_6.json").read_text()) == {"started_at": 4, "step": 6}
    assert_same_weights(tmp_path)
