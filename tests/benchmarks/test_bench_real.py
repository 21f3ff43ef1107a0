"""benchmarks/bench_real.py: leave-one-out folds, scores through the CLI, and the recorded table."""

import json
import os
import sys
from pathlib import Path

import pytest
import torch
from benchmark_scripts import benchmark_script
from engine_utils import tiny_options

from gan_retouch.imaging import save_image
from gan_retouch.train import build_training as Trainer

TINY_NET = ["model.generator.args.ngf=4", "model.generator.args.n_blocks=1", "device=cpu", "data.batch_size=2",
            "data.crop=16", "train.log_every=1"]
STUDENT_RUN = ["device=cpu", "data.batch_size=2", "data.crop=16", "train.steps=2"]  # the built-in student's size


@pytest.fixture(scope="module")
def bench():
    with benchmark_script("bench_real") as module:
        yield module


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    trainer = Trainer(tiny_options(tmp_path_factory.mktemp("pre"), "train.steps=1", "name=pre"))
    trainer.fit()
    return trainer.run_dir / "latest.pt"


def pairs(root: Path, count: int = 3) -> Path:
    generator = torch.Generator().manual_seed(0)
    for index in range(count):
        target = torch.rand(3, 40, 48, generator=generator)
        source = (target + 0.05 * torch.rand(3, 40, 48, generator=generator)).clamp(0, 1)
        save_image(source, root / "source" / f"p{index}.png")
        save_image(target, root / "target" / f"p{index}.png")
    return root


def run(bench, monkeypatch, *arguments: str) -> None:
    monkeypatch.setattr(sys, "argv", ["bench_real.py", *arguments])
    bench.main()


def test_each_fold_holds_out_one_pair_and_trains_on_the_others(bench, tmp_path) -> None:
    from gan_retouch.config import resolve
    from gan_retouch.data.folders import find_pairs

    data = resolve("train", None, {"data": {"source": "folder", "root": str(pairs(tmp_path / "d"))}})[0]["data"]
    records, _ = find_pairs(data, "all")
    fold = bench.make_fold(records, 1, tmp_path / "fold")
    assert sorted(p.name for p in (fold / "test" / "source").iterdir()) == ["p1.png"]
    assert sorted(p.name for p in (fold / "train" / "source").iterdir()) == ["p0.png", "p2.png"]
    assert (fold / "train" / "target" / "p0.png").is_symlink()  # linked, never copied


def test_pretrained_and_finetune_scores_are_recorded(bench, tmp_path, monkeypatch, pretrained) -> None:
    data, out = pairs(tmp_path / "pairs"), tmp_path / "out"
    run(bench, monkeypatch, "--data", str(data), "--pretrained", str(pretrained), "--ways", "pretrained,finetune",
        "--folds", "0,2", "--out", str(out), "--set", "train.steps=2", *TINY_NET)
    rows = json.loads((out / "real.json").read_text())["rows"]
    assert [row["pair"] for row in rows] == ["p0", "p2"]
    for row in rows:
        assert 20 < row["identity"] < 60 and abs(row["pretrained"]) < 30 and row["finetune_seconds"] > 0
    assert (out / "checkpoints" / "finetune_2" / "latest.pt").exists()
    options = (out / "checkpoints" / "finetune_2" / "options.yaml").read_text()
    assert str(pretrained.resolve()) in options  # the fine-tune started from the pretrained weights
    recorded = json.loads((Path(os.environ["GAN_RETOUCH_RESULTS_DIR"]) / "bench_real.json").read_text())
    table = recorded["records"][0]["tables"][0]  # the newest record comes first
    assert table["columns"][2:] == ["pretrained gain", "finetune gain", "finetune strength (chosen in the fold)"]
    assert table["rows"][-2][0] == "mean"
    saved = json.loads((out / "checkpoints" / "finetune_2" / "metrics.json").read_text())["strength"]
    assert rows[1]["finetune_strength"] == saved and table["rows"][1][4] == f"{saved:g}"


def test_the_student_is_distilled_from_each_folds_teacher_and_scored(bench, tmp_path, monkeypatch,
                                                                      pretrained) -> None:
    data, out = pairs(tmp_path / "pairs"), tmp_path / "out"
    run(bench, monkeypatch, "--data", str(data), "--pretrained", str(pretrained), "--ways", "finetune,student",
        "--folds", "1", "--out", str(out), "--no-record", "--set", "train.steps=2", *TINY_NET,
        "--student-set", *STUDENT_RUN)
    row = json.loads((out / "real.json").read_text())["rows"][0]
    assert row["pair"] == "p1" and abs(row["student"]) < 30 and row["student_seconds"] > 0
    options = (out / "checkpoints" / "student_1" / "options.yaml").read_text()
    assert str(out / "checkpoints" / "finetune_1") in options  # distilled from this fold's fine-tuned teacher
    assert "init: builtin:student" in options and "init_open_map: 2.0" in options  # the recipe's prior, opened
    with pytest.raises(SystemExit):
        run(bench, monkeypatch, "--data", str(data), "--pretrained", str(pretrained), "--ways", "student")


def test_unknown_way_and_too_few_pairs_are_clear_errors(bench, tmp_path, monkeypatch, pretrained) -> None:
    with pytest.raises(SystemExit):
        run(bench, monkeypatch, "--data", str(tmp_path), "--pretrained", str(pretrained), "--ways", "magic")
    one = pairs(tmp_path / "one", count=1)
    with pytest.raises(SystemExit, match="leave-one-out needs at least 2"):
        run(bench, monkeypatch, "--data", str(one), "--pretrained", str(pretrained), "--out", str(tmp_path / "o"))
