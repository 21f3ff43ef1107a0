"""Output folders of the commands that write sets of pairs or result pages.
`synth` and `prepare` never write into an existing set or make a split folder inside a folder of pairs; the hidden
folders of a `test` stopped by Ctrl-C or of a killed `prepare` are removed."""

import os
from pathlib import Path

import pytest
from PIL import Image

import gan_retouch.evaluate.scoring as scoring_module
from gan_retouch.cli import main
from gan_retouch.config import resolve
from gan_retouch.engine.checkpoint import save_checkpoint
from gan_retouch.registry import GENERATORS

DEAD_PID = 99_999_999  # above any pid_max: no process has it


def printed(capsys: pytest.CaptureFixture) -> str:
    return " ".join(capsys.readouterr().out.split())


def write_pairs(root: Path, names: list[str], size: tuple[int, int] = (40, 32)) -> Path:
    for index, name in enumerate(names):
        for side in ("source", "target"):
            (root / side).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", size, (index * 30 % 250, 90, 60 if side == "source" else 70)).save(root / side / f"{name}.png")
    return root


# ------------------------------------------------------------------------- 6. synth and prepare write where they should not
def test_synth_never_writes_into_an_existing_set(tmp_path: Path, capsys) -> None:
    out = tmp_path / "set"
    assert main(["synth", "--out", str(out), "--count", "1", "--size", "64", "--set", "synth.splits=[train]"]) == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    assert main(["synth", "--out", str(out), "--count", "2", "--size", "128", "--set", "synth.splits=[train]"]) == 2
    assert f"synth.out {out} already holds files" in printed(capsys)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert all(Image.open(p).size == (64, 64) for p in (out / "train" / "source").iterdir())  # no 128 px one


@pytest.mark.parametrize("command", ["synth", "prepare"])
def test_no_split_folder_is_made_inside_a_folder_of_pairs(tmp_path: Path, command: str, capsys) -> None:
    pairs = write_pairs(tmp_path / "P", ["a", "b"])
    args = (["synth", "--out", str(pairs / "train"), "--count", "1", "--size", "64"] if command == "synth" else
            ["prepare", "--data", str(pairs), "--out", str(pairs / "train"), "--set", "data.split_ratio=[1,0,0]"])
    assert main(args) == 2
    assert f"{pairs / 'train'} is inside the folder of pairs {pairs}" in printed(capsys)
    assert sorted(p.name for p in pairs.iterdir()) == ["source", "target"]


# ------------------------------------------------------------------------------------ 11. leftovers of stopped runs
def test_a_test_stopped_by_ctrl_c_leaves_no_hidden_folder_and_killed_ones_are_removed(tmp_path: Path,
                                                                                        monkeypatch) -> None:
    net = GENERATORS.build("autoretouch", ngf=4, n_blocks=1)
    entry = {"name": "autoretouch", "args": {"ngf": 4, "n_blocks": 1}, "state_dict": net.state_dict()}
    checkpoint = save_checkpoint({"kind": "train", "options": resolve("train")[0], "generator": entry, "step": 0},
                                 tmp_path / "run" / "best.pt")
    pairs = write_pairs(tmp_path / "pairs", ["a", "b"])
    command = ["test", "--checkpoint", str(checkpoint), "--data", str(pairs), "--device", "cpu",
               "--set", f"results_root={tmp_path / 'results'}", "name=r", "test.lpips=false"]
    real_run_plan = scoring_module.run_plan
    calls = []

    def ctrl_c_on_the_second_image(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run_plan(*args, **kwargs)

    monkeypatch.setattr(scoring_module, "run_plan", ctrl_c_on_the_second_image)
    assert main(command) == 130
    assert list((tmp_path / "results" / "r").iterdir()) == []  # the hidden page folder went with the run
    monkeypatch.undo()
    killed = tmp_path / "results" / "r" / f".all_run-best.{DEAD_PID}.tmp"  # what a SIGKILLed test leaves
    (killed / "images").mkdir(parents=True)
    (killed / "images" / "0000_a_input.png").write_bytes(b"full resolution")
    assert main(command) == 0
    assert [p.name for p in (tmp_path / "results" / "r").iterdir()] == ["all_run-best"]


def test_prepare_removes_the_staging_folder_a_killed_prepare_left(tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "pairs", ["a", "b"])
    killed = tmp_path / f".prepared.{DEAD_PID}.tmp"
    (killed / "train" / "source").mkdir(parents=True)
    live = tmp_path / f".other.{os.getpid()}.tmp"  # a live process's: never touched
    live.mkdir()
    assert main(["prepare", "--data", str(pairs), "--out", str(tmp_path / "prepared2"), "--size", "16",
                 "--step", "16", "--set", "data.split_ratio=[1,0,0]"]) == 0
    assert not killed.exists() and live.is_dir() and (tmp_path / "prepared2" / "train").is_dir()
