"""Starting a run from another run's weights (--init): strict by default, non-strict on request, fresh schedule."""

import pytest
import torch
import yaml
from engine_utils import tiny_options

from gan_retouch.cli import main
from gan_retouch.engine.checkpoint import load_checkpoint
from gan_retouch.errors import CheckpointError, ConfigError
from gan_retouch.train import build_training as Trainer


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A finished 2-step run with EMA: its latest.pt holds generator, EMA and discriminator weights."""
    root = tmp_path_factory.mktemp("pretrained")
    trainer = Trainer(tiny_options(root, "train.steps=2", "train.ema=0.5", "name=pre"))
    trainer.fit()
    return trainer.run_dir / "latest.pt"


@pytest.fixture(scope="module")
def without_ema(tmp_path_factory):
    """A finished 1-step run without EMA."""
    trainer = Trainer(tiny_options(tmp_path_factory.mktemp("noema"), "train.steps=1", "name=noema"))
    trainer.fit()
    return trainer.run_dir / "latest.pt"


def weights_equal(module, state_dict):
    return all(torch.equal(module.state_dict()[k], v) for k, v in state_dict.items())


def test_init_takes_the_ema_weights_and_starts_the_schedule_fresh(tmp_path, pretrained):
    saved = load_checkpoint(pretrained)
    trainer = Trainer(tiny_options(tmp_path, f"model.generator.init={pretrained}", "train.steps=1"))
    assert weights_equal(trainer.model.generator, saved["generator_ema"])
    assert not weights_equal(trainer.model.generator, saved["generator"]["state_dict"])  # EMA differs from raw
    assert trainer.step == 0
    trainer.fit()
    recorded = yaml.safe_load((trainer.run_dir / "options.yaml").read_text())
    assert recorded["model"]["generator"]["init"] == str(pretrained.resolve())
    assert load_checkpoint(trainer.run_dir / "latest.pt")["step"] == 1


def test_init_key_plain_and_the_discriminator(tmp_path, pretrained):
    saved = load_checkpoint(pretrained)
    trainer = Trainer(tiny_options(tmp_path, f"model.generator.init={pretrained}", "model.generator.init_key=plain",
                                   f"model.discriminator.init={pretrained}"))
    assert weights_equal(trainer.model.generator, saved["generator"]["state_dict"])
    assert weights_equal(trainer.model.discriminator, saved["discriminator"]["state_dict"])


def test_another_architecture_is_an_error_naming_the_first_mismatch(tmp_path, pretrained):
    options = tiny_options(tmp_path, f"model.generator.init={pretrained}", "model.generator.args.ngf=8")
    with pytest.raises(CheckpointError, match=r"model.generator.init: .*shape of .* vs \(8, 3, 7, 7\).*"
                                              r"--set model.generator.args.ngf=4\).*init_strict=false"):
        Trainer(options)
    assert not (tmp_path / "tiny").exists()  # nothing written before the error


def test_non_strict_loads_what_fits_and_says_what_it_left(tmp_path, pretrained, capsys):
    saved = load_checkpoint(pretrained)["generator_ema"]
    options = tiny_options(tmp_path, f"model.generator.init={pretrained}", "model.generator.init_strict=false",
                           "model.generator.args.n_blocks=2")
    trainer = Trainer(options)
    out = capsys.readouterr().out
    assert "left at their fresh values (missing)" in out and "blocks.1" in out
    shared = {k: v for k, v in saved.items() if k in trainer.model.generator.state_dict()}
    assert shared and weights_equal(trainer.model.generator, shared)


def test_nothing_fitting_is_an_error_even_when_not_strict(tmp_path, pretrained):
    options = tiny_options(tmp_path, f"model.generator.init={pretrained}", "model.generator.init_strict=false",
                           "model.generator.name=pix2pix_unet", "model.generator.args.n_blocks=null",
                           "model.generator.args.num_downs=5")
    with pytest.raises(CheckpointError, match="not one tensor"):
        Trainer(options)


@pytest.mark.parametrize(("items", "match", "error"), [
    (["model.generator.init={root}/missing.pt"], "checkpoint not found", CheckpointError),
    (["model.generator.init_key=ema"], "trained without EMA", CheckpointError),
    (["model.discriminator.name=null", "model.discriminator.init={pre}"], "discriminator.name is null", ConfigError),
])
def test_bad_inits(tmp_path, pretrained, without_ema, items, match, error):
    items = [i.format(root=tmp_path, pre=pretrained) for i in items]
    if not any(i.startswith("model.generator.init=") for i in items):
        items.append(f"model.generator.init={without_ema}")
    options = tiny_options(tmp_path, *items, extra={"losses": {"gan": None}} if "null" in str(items) else None)
    with pytest.raises(error, match=match):
        Trainer(options)


def test_the_init_flag_on_the_command_line(tmp_path, pretrained, capsys):
    code = main(["train", "--recipe", "quickstart", "--init", str(tmp_path / "nope.pt"), "--set",
                 f"checkpoints_root={tmp_path}", "device=cpu"])
    out = capsys.readouterr().out
    assert code == 2 and "checkpoint not found" in out and "Traceback" not in out


def test_an_unknown_init_key_is_refused_when_options_load(tmp_path):
    with pytest.raises(ConfigError, match=r"model.generator.init_key .*auto \| ema \| plain"):
        tiny_options(tmp_path, "model.generator.init_key=newest")


def test_distill_starts_the_student_from_an_earlier_student(tmp_path):
    """`distill --init`: the student begins with the given student's weights (a teacher fits no student)."""
    from gan_retouch.config import resolve
    from gan_retouch.distill import run_distill
    from gan_retouch.engine.checkpoint import save_checkpoint
    from gan_retouch.registry import GENERATORS

    args = {"width": 8, "blocks": 1, "context": 1, "detail": 8, "detail_blocks": 0, "edit_mask": True}
    earlier = GENERATORS.build("student_fast", **args)
    for parameter in earlier.parameters():  # off the identity start, so that the check could fail
        parameter.data.add_(0.01)
    teacher_args = {"ngf": 4, "n_blocks": 1, "edit_mask": True}
    teacher = GENERATORS.build("autoretouch", **teacher_args)

    def save(module, name, module_args, kind, file):
        entry = {"name": name, "args": module_args, "state_dict": module.state_dict()}
        return save_checkpoint({"kind": kind, "generator": entry}, tmp_path / file)

    student_path = save(earlier, "student_fast", args, "distill", "earlier.pt")
    teacher_path = save(teacher, "autoretouch", teacher_args, "train", "teacher.pt")
    overrides = {
        "device": "cpu", "checkpoints_root": str(tmp_path / "ck"), "name": "again",
        "data": {"batch_size": 2, "crop": 32, "val_count": 2, "synthetic": {"size": 48, "val_count": 2}},
        "model": {"generator": {"args": args, "init": str(student_path)}},
        "train": {"steps": 1, "log_every": 1, "save_every": 1, "lr": 1e-12},
        "val": {"every": 0, "samples": 1},
        "distill": {"teacher": str(teacher_path), "latency_size": 64, "latency_time_s": 0.01},
    }
    options, _ = resolve("distill", "student", overrides)
    assert run_distill(options) == 0
    state = load_checkpoint(tmp_path / "ck" / "again" / "latest.pt")
    for key, value in earlier.state_dict().items():
        if value.dtype.is_floating_point and not key.endswith(("running_mean", "running_var")):
            torch.testing.assert_close(state["generator"]["state_dict"][key], value, atol=1e-6, rtol=0)
    recorded = yaml.safe_load((tmp_path / "ck" / "again" / "options.yaml").read_text())
    assert recorded["model"]["generator"]["init"] == str(student_path.resolve())
    wrong = resolve("distill", "student", {**overrides, "name": "wrong",
                                           "model": {"generator": {"args": args, "init": str(teacher_path)}}})[0]
    with pytest.raises(CheckpointError, match="model.generator.init"):
        run_distill(wrong)


def test_init_open_map_opens_the_loaded_edit_map(tmp_path):
    edit_map = ["model.generator.args.edit_mask=true"]
    first = Trainer(tiny_options(tmp_path / "a", *edit_map, "train.steps=1", "name=a"))
    first.fit()
    with_map = first.run_dir / "latest.pt"
    trainer = Trainer(tiny_options(tmp_path / "b", *edit_map, f"model.generator.init={with_map}",
                                   "model.generator.init_open_map=2"))
    loaded = load_checkpoint(with_map)["generator"]["state_dict"]["tail.bias"]  # channel 3: the edit-map logit
    opened = trainer.model.generator.state_dict()["tail.bias"]
    torch.testing.assert_close(opened - loaded, torch.tensor([0.0, 0.0, 0.0, 2.0]))
    with pytest.raises(ConfigError, match="init_open_map=2 .*set model.generator.init"):
        Trainer(tiny_options(tmp_path / "c", *edit_map, "model.generator.init_open_map=2"))
