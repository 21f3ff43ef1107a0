"""`retouch` split over the processes of a torchrun launch: each output file written by exactly one process."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import gan_retouch.nets  # noqa: F401  (registers the generators)
from gan_retouch.config import resolve
from gan_retouch.deploy.shares import launch_device, share
from gan_retouch.engine.checkpoint import save_checkpoint
from gan_retouch.engine.distributed import DistInfo, launch_from_env
from gan_retouch.errors import ConfigError
from gan_retouch.imaging import tensor_to_pil
from gan_retouch.registry import GENERATORS

REPO = Path(__file__).resolve().parents[2]


def test_the_shares_of_all_ranks_cover_every_output_once_and_keep_collisions_together():
    keys = ["a.png", "b.png", "a.png", "c.png", "d.png", "e.png"]  # items 0 and 2 write the same file
    items = list(range(len(keys)))
    shares = [share(items, keys, DistInfo(rank, 3)) for rank in range(3)]
    assert sorted(i for s in shares for i in s) == items
    assert shares[0] == [0, 2, 4] and shares[1] == [1, 5] and shares[2] == [3]


def test_the_launch_comes_from_torchrun_environment(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    launch = launch_from_env()
    assert launch == DistInfo(3, 4, 1) and launch_device(torch.device("cuda"), launch) == torch.device("cuda", 1)
    assert launch_device(torch.device("cpu"), launch) == torch.device("cpu")
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ConfigError, match="RANK=4 is not a rank of WORLD_SIZE=4"):
        launch_from_env()


def test_a_torchrun_launch_retouches_each_file_once(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    for index in range(7):
        tensor_to_pil(torch.rand(3, 24 + index, 32)).save(photos / f"p{index}.png")
    args = {"ngf": 4, "n_blocks": 1}
    entry = {"name": "autoretouch", "args": args, "state_dict": GENERATORS.build("autoretouch", **args).state_dict()}
    checkpoint = save_checkpoint({"kind": "train", "options": resolve("train")[0], "generator": entry, "step": 0},
                                 tmp_path / "best.pt")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "gan_retouch",
         "retouch", str(photos), "-o", str(out), "--checkpoint", str(checkpoint), "--device", "cpu"],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    counts = {rank: int(n) for n, rank in re.findall(r"retouched (\d+) image\(s\).*?\(rank (\d) of 2\)",
                                                      " ".join(result.stdout.split()))}
    assert counts == {"0": 4, "1": 3}
    assert sorted(p.name for p in out.iterdir()) == [f"p{index}.png" for index in range(7)]
    assert "skipped" not in result.stdout  # neither rank found the other's outputs in its way
