"""Faults around a training run: val.samples=0, resuming (a finished run, another recipe step count),
SIGTERM, duplicate log records after a resume, a full disk during a save. Nothing silently wrong, nothing lost."""

import errno
import json
import os
import re
import signal
from pathlib import Path

import pytest
from engine_utils import tiny_options

import gan_retouch.engine.checkpoint as checkpoint_module
from gan_retouch.cli import main
from gan_retouch.engine.checkpoint import load_checkpoint, save_checkpoint
from gan_retouch.engine.loop import TrainingInterrupted
from gan_retouch.fileio import OutputError
from gan_retouch.train import build_training

TINY = ["device=cpu", "name=tiny", "data.synthetic.size=32", "data.crop=null", "data.batch_size=2",
        "data.val_count=2", "data.synthetic.val_count=2", "train.log_every=1", "val.every=0", "val.samples=1",
        "val.lpips=false", "model.generator.args={ngf: 4, n_blocks: 1}",
        "model.discriminator.args={ndf: 4, n_layers: 1}"]
TORCH_WRITE_FAILED = "[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing file data/0: " \
                     "file write failed"


def printed(capsys: pytest.CaptureFixture) -> str:
    """What the command printed, with rich's line wrapping undone."""
    return " ".join(capsys.readouterr().out.split())


def train_cli(root: Path, *flags: str, recipe: str = "quickstart") -> int:
    """`gan-retouch train --recipe quickstart` with tiny networks under ``root``."""
    return main(["train", "--recipe", recipe, *flags, "--set", f"checkpoints_root={root}", *TINY])


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_val_samples_zero_finishes_the_run_with_best_and_metrics(tmp_path: Path) -> None:
    loop = build_training(tiny_options(tmp_path, "val.samples=0", "train.steps=2"))
    loop.fit()
    assert (loop.run_dir / "best.pt").is_file() and (loop.run_dir / "web" / "index.html").is_file()
    assert json.loads((loop.run_dir / "metrics.json").read_text())["step"] == 2
    assert not list(loop.run_dir.glob("samples/*.png"))


def test_a_finished_run_resumed_without_steps_is_complete_and_untouched(tmp_path: Path, capsys) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("base: quickstart\ntrain: {steps: 3}\n")
    assert train_cli(tmp_path, "--steps", "2", recipe=str(recipe)) == 0
    run_dir = tmp_path / "tiny"
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    capsys.readouterr()
    assert train_cli(tmp_path, "--resume", recipe=str(recipe)) == 2  # the recipe says 3 steps, the run was 2
    out = printed(capsys)
    assert f"error: {run_dir} is already complete: it trained all its 2 steps" in out
    assert "nothing was trained or overwritten" in out and "--steps N (N > 2)" in out
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
    assert train_cli(tmp_path, "--resume", "--steps", "4", recipe=str(recipe)) == 0  # asked for: it trains on
    assert "now lasts 4 steps instead of 2, as asked" in printed(capsys)
    assert load_checkpoint(run_dir / "latest.pt")["step"] == 4
    assert "steps: 4" in (run_dir / "options.yaml").read_text()


def test_a_resumed_run_keeps_its_own_schedule_unless_the_command_line_sets_it(tmp_path: Path, capsys) -> None:
    items = ["train.scheduler=cosine", "train.save_every=1"]
    loop = build_training(tiny_options(tmp_path, *items))  # 4 steps
    step = loop.model.train_step

    def stopped_at_two(batches):
        if loop.step + 1 == 2:
            loop.stop_requested = True
        return step(batches)

    loop.model.train_step = stopped_at_two
    with pytest.raises(TrainingInterrupted):
        loop.fit()
    capsys.readouterr()
    other_recipe = tiny_options(tmp_path, *items, "train.steps=9", "train.scheduler=linear", "train.resume=auto")
    resumed = build_training(other_recipe, command_line=["train.resume"])
    assert resumed.total_steps == 4 and resumed.options["train"]["scheduler"] == "cosine"
    assert "with the run's own schedule (4 steps), not train.steps=9, train.scheduler='linear'" in printed(capsys)
    resumed.fit()
    assert load_checkpoint(resumed.run_dir / "latest.pt")["options"]["train"]["steps"] == 4
    lrs = [r["lr"] for r in records(resumed.run_dir) if "lr" in r]
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] < lrs[0]  # the cosine went on decaying, no jump back up


def test_sigterm_saves_at_a_step_boundary_and_the_previous_handler_returns(tmp_path: Path) -> None:
    received = []

    def previous(signum, frame):  # stands in for the default action (which would end this test process)
        received.append(signum)

    original = signal.signal(signal.SIGTERM, previous)
    try:
        loop = build_training(tiny_options(tmp_path, "train.save_every=0"))
        step = loop.model.train_step

        def terminated(batches):
            if loop.step + 1 == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # what Slurm / Kubernetes send to stop a job
            return step(batches)

        loop.model.train_step = terminated
        with pytest.raises(TrainingInterrupted, match=r"interrupted at step 2 by SIGTERM; saved .*latest.pt") as stop:
            loop.fit()
        assert stop.value.exit_code == 143  # 128 + SIGTERM, as a shell reports a job stopped by it
        assert load_checkpoint(loop.run_dir / "latest.pt")["step"] == 2
        assert signal.getsignal(signal.SIGTERM) is previous and received == []
    finally:
        signal.signal(signal.SIGTERM, original)


def test_a_resume_drops_the_log_records_it_writes_again(tmp_path: Path) -> None:
    loop = build_training(tiny_options(tmp_path, "train.save_every=2"))
    step = loop.model.train_step

    def killed_at_four(batches):  # latest.pt holds step 2; log.jsonl already has step 3
        if loop.step + 1 == 4:
            raise RuntimeError("killed")
        return step(batches)

    loop.model.train_step = killed_at_four
    with pytest.raises(RuntimeError, match="killed"):
        loop.fit()
    with (loop.run_dir / "log.jsonl").open("a") as log:
        log.write('{"step": 4, "G": 0.')  # a line torn by the kill
    build_training(tiny_options(tmp_path, "train.resume=auto")).fit()
    assert [r["step"] for r in records(loop.run_dir) if "G" in r] == [1, 2, 3, 4]


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"), RuntimeError(TORCH_WRITE_FAILED)])
def test_a_full_disk_during_a_save_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch, failure) -> None:
    path = save_checkpoint({"step": 1}, tmp_path / "latest.pt")

    def disk_full(obj, stream, *args, **kwargs):
        stream.write(b"half a checkpoint")
        raise failure

    monkeypatch.setattr(checkpoint_module.torch, "save", disk_full)
    with pytest.raises(OutputError) as refused:
        save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    message = str(refused.value)
    assert message.startswith(f"cannot write {path}: ") and "\n" not in message
    assert re.search(rf"\(\d+(\.\d)? [MG]B free in {re.escape(str(tmp_path))}\); the previous latest.pt is unchanged",
                     message)
    assert load_checkpoint(path)["step"] == 1
    assert list(tmp_path.iterdir()) == [path]  # the temp file is gone


def test_a_full_disk_during_training_is_one_line_and_resumable(tmp_path: Path, monkeypatch, capsys) -> None:
    real_save = checkpoint_module.torch.save
    saves = []

    def full_on_the_second_save(obj, stream, *args, **kwargs):
        saves.append(obj["step"])
        if len(saves) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, stream, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module.torch, "save", full_on_the_second_save)
    assert train_cli(tmp_path, "--steps", "4", "--set", "train.save_every=2") == 2
    monkeypatch.undo()
    out = capsys.readouterr().out
    error = " ".join(out[out.index("error:"):].split())
    assert error.startswith(f"error: cannot write {tmp_path / 'tiny' / 'latest.pt'}: no space left on the device")
    assert "Traceback" not in out and "the previous latest.pt is unchanged" in error and "--resume" in error
    assert load_checkpoint(tmp_path / "tiny" / "latest.pt")["step"] == 2
    assert train_cli(tmp_path, "--steps", "4", "--resume") == 0
