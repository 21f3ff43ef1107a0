"""`test` split over the processes of a torchrun launch: each rank scores its share of the pairs, rank 0 writes
the one metrics.json and page, the same as a single process writes them."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import torch

import gan_retouch.nets  # noqa: F401  (registers the generators)
from gan_retouch.cli import main
from gan_retouch.config import resolve
from gan_retouch.engine.checkpoint import save_checkpoint
from gan_retouch.imaging import save_image
from gan_retouch.registry import GENERATORS

REPO = Path(__file__).resolve().parents[2]


def pairs_folder(root: Path, count: int) -> Path:
    """``count`` pairs of different sizes, with defect masks, in source/ + target/ + masks/."""
    generator = torch.Generator().manual_seed(3)
    for index in range(count):
        target = torch.rand(3, 40 + 3 * index, 36, generator=generator)
        save_image(target, root / "target" / f"p{index}.png")
        save_image((target + 0.05).clamp(0, 1), root / "source" / f"p{index}.png")
        save_image(torch.rand(1, *target.shape[-2:], generator=generator).round(), root / "masks" / f"p{index}.png")
    return root


def written(folder: Path) -> tuple[dict, str, dict[str, bytes]]:
    """metrics.json without its time, the page without its time, and every image file's bytes."""
    facts = json.loads((folder / "metrics.json").read_text())
    facts.pop("written")
    page = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", "TIME", (folder / "index.html").read_text())
    return facts, page, {p.name: p.read_bytes() for p in sorted((folder / "images").iterdir())}


def test_two_gloo_ranks_write_what_one_process_writes(tmp_path: Path) -> None:
    args = {"ngf": 4, "n_blocks": 1}
    entry = {"name": "autoretouch", "args": args, "state_dict": GENERATORS.build("autoretouch", **args).state_dict()}
    checkpoint = save_checkpoint({"kind": "train", "options": resolve("train")[0], "generator": entry, "step": 3},
                                 tmp_path / "run" / "best.pt")
    data = pairs_folder(tmp_path / "pairs", 5)
    command = ["test", "--checkpoint", str(checkpoint), "--data", str(data), "--device", "cpu", "--set",
               "test.lpips=false", "test.y_channel=true", "name=scores"]  # masks/: found (data.mask_dir auto)
    assert main([*command, "--set", f"results_root={tmp_path / 'one'}"]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "gan_retouch",
         *command, "--set", f"results_root={tmp_path / 'two'}"],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = " ".join(result.stdout.split())
    assert out.count("scoring run-best on 5 all pairs") == 1 and "2 processes of a torchrun launch" in out
    assert out.count("results:") == 1  # rank 0 alone writes and reports the page
    assert sorted(re.findall(r"rank (\d) of 2: scored (\d) pairs", out)) == [("0", "3"), ("1", "2")]
    single, double = tmp_path / "one" / "scores" / "all_run-best", tmp_path / "two" / "scores" / "all_run-best"
    assert written(double) == written(single)
    assert "psnr_mask" in written(single)[0]["summary"]["run-best"]
    assert len(written(single)[2]) == 5 * 5  # input, target, output and two heatmaps per pair
    assert sorted(p.name for p in double.parent.iterdir()) == ["all_run-best"]  # no temporary folder left
