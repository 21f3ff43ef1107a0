"""The names builtin, builtin:teacher, builtin:student wherever a checkpoint is taken (one door:
engine.checkpoint.load_checkpoint), on a fake built-in set."""

import numpy as np
import pytest
import torch
import yaml
from builtin_fakes import STUDENT_ARGS, TEACHER_ARGS
from engine_utils import tiny_options
from PIL import Image

from gan_retouch.builtin import store
from gan_retouch.cli import main
from gan_retouch.config import resolve
from gan_retouch.distill import run_distill
from gan_retouch.distill.teacher import load_teacher
from gan_retouch.engine.checkpoint import load_checkpoint, load_generator
from gan_retouch.errors import ConfigError
from gan_retouch.synth.synthetic import synthesize_pair
from gan_retouch.train import build_training as Trainer


def squeezed(capsys) -> str:
    """What was printed, without any whitespace: rich wraps long lines and folds long paths."""
    return "".join(capsys.readouterr().out.split())


def write_photo(path, size=96):
    pair = synthesize_pair(0, size, seed=3, split="test")
    Image.fromarray((pair["input"].permute(1, 2, 0) * 255).round().byte().numpy()).save(path)
    return path


def test_names_load_the_right_model(builtin_dir, fake_set):
    student, info = load_generator("builtin")
    assert info["builtin"] == "builtin:student" and info["kind"] == "distill"
    assert type(student).__name__ == "StudentFast" or info["generator"]["name"] == "student_fast"
    assert info["path"] == str(builtin_dir / "student.pt")
    teacher, info = load_generator("builtin:teacher")
    assert info["generator"] == {"name": "autoretouch", "args": TEACHER_ARGS} and info["plan"].coarse_pass
    assert load_generator("builtin:student")[1]["generator"]["args"] == STUDENT_ARGS
    assert load_checkpoint("builtin", builtin="teacher")["builtin"] == "builtin:teacher"
    frozen, info = load_teacher("builtin")  # where a teacher is asked for, builtin alone is the teacher
    assert info["builtin"] == "builtin:teacher" and not any(p.requires_grad for p in frozen.parameters())
    # the fp16 files run within the recorded change of the fp32 EMA weights they were made from
    original = fake_set[2]["ema"].eval()
    image = torch.rand(1, 3, 64, 64)
    change = (teacher(image)[0] - original(image)[0]).abs().max().item()
    assert change <= fake_set[1]["teacher"]["weights"]["max_output_change"] + 1e-3


def test_unknown_names_name_the_closest_valid_one(builtin_dir):
    with pytest.raises(ConfigError, match=r"unknown built-in model 'builtin:teachr': did you mean builtin:teacher\?"):
        load_generator("builtin:teachr")
    with pytest.raises(ConfigError, match=r"builtin \(here builtin:student\), builtin:student, builtin:teacher"):
        load_generator("builtin:xyz")
    assert not store.is_builtin("builtins") and not store.is_builtin(builtin_dir / "student.pt")


def test_retouch_without_a_checkpoint_uses_the_builtin_teacher(builtin_dir, tmp_path, capsys):
    photo = write_photo(tmp_path / "face.png")
    assert main(["retouch", str(photo), "-o", str(tmp_path / "out")]) == 0
    out = squeezed(capsys)
    assert f"with{builtin_dir / 'teacher.pt'}into" in out and "coarsepasson" in out  # the teacher's own plan
    assert main(["retouch", str(photo), "-o", str(tmp_path / "out_s"), "--checkpoint", "builtin"]) == 0
    out = squeezed(capsys)
    assert f"with{builtin_dir / 'student.pt'}into" in out and "worksize128px" in out  # the student's own plan
    retouched = np.asarray(Image.open(tmp_path / "out_s" / "face.png"), dtype=np.int16)
    assert np.abs(retouched - np.asarray(Image.open(photo), dtype=np.int16)).max() > 0  # the model edited it


def test_test_bench_and_export_take_the_names(builtin_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--checkpoint", "builtin", "--format", "torchscript"]) == 0
    assert (tmp_path / "builtin-student.ts").is_file() and not list(builtin_dir.glob("*.ts"))
    assert main(["bench", "--checkpoint", "builtin:teacher", "--size", "64", "--json", "--set",
                 "bench.min_time_s=0.01", "bench.uhd=false"]) == 0
    assert "autoretouch" in capsys.readouterr().out
    code = main(["test", "--checkpoint", "builtin", "--checkpoint", "builtin:teacher", "--set",
                 f"results_root={tmp_path / 'results'}", "data.synthetic.size=64", "data.synthetic.test_count=2",
                 "test.lpips=false", "device=cpu"])
    out = capsys.readouterr().out
    assert code == 0 and "builtin-student" in out and "builtin-teacher" in out


def test_train_init_builtin_starts_from_the_teacher(builtin_dir, tmp_path, capsys):
    options = tiny_options(tmp_path, "model.generator.init=builtin", "train.steps=1",
                           extra={"model": {"generator": {"args": TEACHER_ARGS}}})
    trainer = Trainer(options)
    assert f"generatorinitialisedfrom{builtin_dir / 'teacher.pt'}" in squeezed(capsys)
    loaded = load_generator("builtin:teacher")[0].state_dict()
    for key, value in trainer.model.generator.state_dict().items():
        torch.testing.assert_close(value, loaded[key])
    trainer.fit()
    recorded = yaml.safe_load((trainer.run_dir / "options.yaml").read_text())
    assert recorded["model"]["generator"]["init"] == "builtin:teacher"


def test_distill_from_the_builtin_teacher_and_student(builtin_dir, tmp_path):
    overrides = {
        "device": "cpu", "checkpoints_root": str(tmp_path / "ck"), "name": "again",
        "data": {"batch_size": 2, "crop": 32, "val_count": 2, "synthetic": {"size": 48, "val_count": 2}},
        "model": {"generator": {"args": STUDENT_ARGS, "init": "builtin"}},
        "train": {"steps": 1, "log_every": 1, "save_every": 1, "lr": 1e-12},
        "val": {"every": 0, "samples": 1},
        "distill": {"teacher": "builtin:teacher", "latency_size": 64, "latency_time_s": 0.01},
    }
    options, _ = resolve("distill", "student", overrides)
    assert run_distill(options) == 0
    state = load_checkpoint(tmp_path / "ck" / "again" / "latest.pt")
    assert state["extension_info"]["teacher"] == str(builtin_dir / "teacher.pt")
    recorded = yaml.safe_load((tmp_path / "ck" / "again" / "options.yaml").read_text())
    assert recorded["model"]["generator"]["init"] == "builtin:student"
    loaded = load_generator("builtin:student")[0].state_dict()
    for key, value in loaded.items():
        if value.dtype.is_floating_point and not key.endswith(("running_mean", "running_var")):
            torch.testing.assert_close(state["generator"]["state_dict"][key], value, atol=1e-6, rtol=0)
