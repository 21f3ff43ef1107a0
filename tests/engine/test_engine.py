"""The training engine: GAN modes, stages, resume equivalence, atomic checkpoints, NaN guard, mismatch errors."""

import json

import pytest
import torch
from engine_utils import tiny_options

from gan_retouch.engine import checkpoint as checkpoint_module
from gan_retouch.engine.checkpoint import load_checkpoint, save_checkpoint
from gan_retouch.engine.loop import TrainingLoop, TrainingStopped
from gan_retouch.engine.model import RetouchModel
from gan_retouch.engine.monitor import best_note
from gan_retouch.errors import CheckpointError, ConfigError
from gan_retouch.train import build_training as Trainer


def read_log(run_dir):
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("mode", ["vanilla", "lsgan", "hinge"])
def test_one_gan_step_updates_generator_and_discriminator(tmp_path, mode):
    options = tiny_options(tmp_path, "train.steps=1", extra={"losses": {"gan": {"mode": mode, "weight": 1.0}}})
    trainer = Trainer(options)
    g_before = {k: v.clone() for k, v in trainer.model.generator.state_dict().items()}
    d_before = {k: v.clone() for k, v in trainer.model.discriminator.state_dict().items()}
    metrics = trainer.fit()
    g_changed = any(not torch.equal(g_before[k], v) for k, v in trainer.model.generator.state_dict().items())
    d_changed = any(not torch.equal(d_before[k], v) for k, v in trainer.model.discriminator.state_dict().items())
    assert g_changed and d_changed
    record = read_log(trainer.run_dir)[0]
    assert {"G", "D", "gan", "l1", "lr", "sec_per_step", "images_per_sec"} <= set(record)
    assert metrics["identity_psnr"] > 20 and "psnr" in metrics
    state = load_checkpoint(trainer.run_dir / "latest.pt")
    assert state["step"] == 1 and state["discriminator"]["name"] == "patchgan"
    assert (trainer.run_dir / "options.yaml").exists() and (trainer.run_dir / "best.pt").exists()
    assert list((trainer.run_dir / "samples").glob("step_*.png"))
    page = (trainer.run_dir / "web" / "index.html").read_text()
    assert "identity" in page and "images/000_" in page


def test_reconstruction_mode_needs_no_discriminator(tmp_path):
    options = tiny_options(tmp_path, "model.discriminator.name=null", "train.steps=2",
                           extra={"losses": {"gan": None}})
    trainer = Trainer(options)
    trainer.fit()
    assert trainer.model.discriminator is None
    assert "D" not in read_log(trainer.run_dir)[0]


def test_adversarial_term_without_discriminator_is_an_error(tmp_path):
    options = tiny_options(tmp_path, "model.discriminator.name=null")
    with pytest.raises(ConfigError, match="needs? .*discriminator|discriminator.name is null"):
        Trainer(options)


def test_stages_switch_losses_and_learning_rate(tmp_path):
    stages = [
        {"name": "first", "steps": 2, "train": {"lr": 1.0e-3, "scheduler": "constant"}, "losses": {"l1": {}}},
        {"name": "second", "steps": 2, "train": {"lr": 1.0e-4, "scheduler": "constant"}, "losses": {"psnr": {}}},
    ]
    options = tiny_options(tmp_path, "model.discriminator.name=null", extra={"losses": {"gan": None},
                                                                              "stages": stages})
    trainer = Trainer(options)
    trainer.fit()
    log = [r for r in read_log(trainer.run_dir) if "G" in r]
    assert [r["stage"] for r in log] == ["first", "first", "second", "second"]
    assert log[0]["lr"] == pytest.approx(1e-3) and log[-1]["lr"] == pytest.approx(1e-4)
    assert "l1" in log[0] and "psnr" in log[-1] and "l1" not in log[-1]


def InterruptAt(options, stop_at: int = 3) -> TrainingLoop:
    """A loop whose Ctrl-C arrives during step ``stop_at``."""
    loop = Trainer(options)
    step = loop.model.train_step

    def interrupted_step(batches):
        if loop.step + 1 == stop_at:
            loop.stop_requested = True
        return step(batches)

    loop.model.train_step = interrupted_step
    return loop


def test_resumed_run_reproduces_the_uninterrupted_weights(tmp_path):
    extra = {"stages": [
        {"name": "a", "steps": 2, "train": {"lr": 1.0e-3}},
        {"name": "b", "steps": 4, "train": {"lr": 5.0e-4, "scheduler": "linear"}},
    ]}
    items = ["train.ema=0.9", "train.scheduler=cosine", "data.augment.hflip=true"]
    straight = Trainer(tiny_options(tmp_path / "a", *items, extra=extra))
    straight.fit()

    interrupted = InterruptAt(tiny_options(tmp_path / "b", *items, extra=extra))
    with pytest.raises(TrainingStopped, match="interrupted at step 3") as stopped:
        interrupted.fit()
    assert stopped.value.exit_code == 130
    assert load_checkpoint(interrupted.run_dir / "latest.pt")["step"] == 3
    resumed = Trainer(tiny_options(tmp_path / "b", *items, "train.resume=auto", extra=extra))
    assert resumed.step == 3
    resumed.fit()
    for name in ("generator", "discriminator"):
        a, b = getattr(straight.model, name).state_dict(), getattr(resumed.model, name).state_dict()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=f"{name}.{key}")
    for key, value in straight.model.ema.state_dict().items():
        torch.testing.assert_close(value, resumed.model.ema.state_dict()[key], rtol=1e-5, atol=1e-6)


def test_existing_run_is_never_overwritten_without_resume(tmp_path):
    Trainer(tiny_options(tmp_path, "train.steps=1")).fit()
    with pytest.raises(ConfigError, match="already holds a run"):
        Trainer(tiny_options(tmp_path, "train.steps=1"))


def test_crash_during_save_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    path = tmp_path / "latest.pt"
    save_checkpoint({"step": 1, "payload": torch.arange(10)}, path)

    def crash(obj, stream, *args, **kwargs):
        stream.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_truncated_or_foreign_checkpoints_are_clear_errors(tmp_path):
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "broken.pt")
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a gan-retouch checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


def NanAtStep(options, nan_step: int = 2) -> TrainingLoop:
    """A loop whose first loss term turns NaN during step ``nan_step``."""
    loop = Trainer(options)
    step = loop.model.train_step

    def poisoned_step(batches):
        if loop.step + 1 != nan_step:
            return step(batches)
        term = next(iter(loop.model.optimization.losses.terms.values()))
        original = term.forward
        term.forward = lambda ctx: original(ctx) * float("nan")
        try:
            return step(batches)
        finally:
            term.forward = original

    loop.model.train_step = poisoned_step
    return loop


def test_nan_guard_stops_with_step_term_and_last_checkpoint(tmp_path):
    trainer = NanAtStep(tiny_options(tmp_path, "train.save_every=1", "model.discriminator.name=null",
                                     extra={"losses": {"gan": None}}))
    with pytest.raises(TrainingStopped, match=r"non-finite loss at step 2 .*l1.*latest.pt"):
        trainer.fit()
    weights = load_checkpoint(trainer.run_dir / "latest.pt")["generator"]["state_dict"]
    for key, value in trainer.model.generator.state_dict().items():
        assert torch.equal(value, weights[key])  # the bad step changed nothing
        assert torch.isfinite(value.float()).all()


def test_nan_guard_can_skip_the_step(tmp_path):
    trainer = NanAtStep(tiny_options(tmp_path, "train.nan_policy=skip", "train.steps=3",
                                     "model.discriminator.name=null", extra={"losses": {"gan": None}}))
    trainer.fit()
    assert trainer.step == 3
    assert all(torch.isfinite(v.float()).all() for v in trainer.model.generator.state_dict().values())


def test_resuming_with_another_architecture_names_the_mismatch(tmp_path):
    Trainer(tiny_options(tmp_path, "train.steps=1")).fit()
    options = tiny_options(tmp_path, "train.steps=2", "train.resume=auto")
    options["model"]["generator"]["args"]["ngf"] = 8
    with pytest.raises(CheckpointError, match=r"autoretouch\(.*ngf=4.*but the options ask for.*ngf=8"):
        Trainer(options)


def test_loading_weights_of_another_architecture_names_the_keys(tmp_path):
    from gan_retouch.engine.checkpoint import load_state_strict
    from gan_retouch.registry import GENERATORS

    small = GENERATORS.build("autoretouch", ngf=4, n_blocks=1)
    large = GENERATORS.build("autoretouch", ngf=8, n_blocks=2)
    with pytest.raises(CheckpointError, match="another architecture.*shape mismatches"):
        load_state_strict(large, small.state_dict(), "generator", "ckpt.pt")


def test_competition_recipe_runs_its_three_stages_with_the_student(tmp_path):
    options = tiny_options(tmp_path, "data.synthetic.size=64", "data.crop=48", recipe="competition_3stage",
                           extra={"model": {"generator": {"name": "student", "args": {
                               "width": 4, "depth": 1, "levels": 2, "ngf": None, "n_blocks": None, "residual": None}},
                                            "discriminator": {"name": None}}})
    for stage in options["stages"]:
        stage["steps"] = 1
        stage["data"]["batch_size"] = 2
        stage["data"]["crop"] = 48 if "crop" in stage["data"] else None
        stage["data"] = {k: v for k, v in stage["data"].items() if v is not None}
    trainer = Trainer(options)
    trainer.fit()
    log = [r for r in read_log(trainer.run_dir) if "G" in r]
    assert [r["stage"] for r in log] == ["l1_color", "psnr", "score"]
    assert {"l1", "color"} <= set(log[0]) and "psnr" in log[1] and "score" in log[2]
    assert [r["lr"] for r in log] == pytest.approx([5e-4, 5e-5, 2e-5])  # each stage's own rate


def test_bf16_autocast_runs_on_cpu_and_fp16_is_a_clear_error(tmp_path):
    trainer = Trainer(tiny_options(tmp_path / "bf16", "train.amp=bf16", "train.steps=1"))
    trainer.fit()
    assert trainer.model.precision.amp_dtype == torch.bfloat16
    with pytest.raises(ConfigError, match="fp16 needs CUDA"):
        Trainer(tiny_options(tmp_path / "fp16", "train.amp=fp16"))


def test_leftover_generator_arguments_get_a_hint(tmp_path):
    options = tiny_options(tmp_path, "model.generator.name=student")
    with pytest.raises(ConfigError, match=r"no argument 'ngf'.*model.generator.args.NAME=null"):
        Trainer(options)


def test_summary_names_the_step_best_pt_holds_when_it_is_not_the_last(tmp_path):
    trainer = Trainer(tiny_options(tmp_path, "train.steps=1"))
    trainer.step = 700
    trainer.best = {"metric": "psnr", "value": 44.8012, "step": 350}
    assert best_note(trainer.best, trainer.step, trainer.min_clean) == " best.pt is step 350 (psnr 44.8)."
    trainer.best["step"] = 700
    assert best_note(trainer.best, trainer.step, trainer.min_clean) == ""


def test_validation_reports_psnr_inside_and_outside_the_masks_and_can_select_best_by_them(tmp_path):
    trainer = Trainer(tiny_options(tmp_path, "train.steps=2", "val.metric=psnr_clean"))
    trainer.fit()
    record = [row for row in read_log(trainer.run_dir) if "val_psnr" in row][-1]
    assert record["identity_psnr_clean"] == 100.0  # the input is untouched outside the defects
    assert record["identity_psnr_mask"] < record["identity_psnr"] < 100.0
    assert record["val_psnr_clean"] > record["val_psnr_mask"]
    assert load_checkpoint(trainer.run_dir / "best.pt")["best"]["metric"] == "psnr_clean"


def test_an_unknown_validation_metric_stops_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match="val.metric .*'psnr_clen' is not valid.*psnr_clean. Did you mean 'psnr_clean'"):
        Trainer(tiny_options(tmp_path, "val.metric=psnr_clen"))
    assert not (tmp_path / "tiny").exists()


def test_min_psnr_clean_keeps_checkpoints_that_edit_clean_skin_out_of_best_pt(tmp_path, capsys):
    unreachable = Trainer(tiny_options(tmp_path, "train.steps=2", "val.min_psnr_clean=1000"))
    unreachable.fit()
    report = " ".join(capsys.readouterr().out.split())
    assert "below val.min_psnr_clean 1000 dB" in report and "there is no best.pt: use latest.pt" in report
    assert not (unreachable.run_dir / "best.pt").exists() and (unreachable.run_dir / "latest.pt").exists()
    reachable = Trainer(tiny_options(tmp_path, "train.steps=2", "val.min_psnr_clean=1", "name=ok"))
    reachable.fit()
    assert (reachable.run_dir / "best.pt").exists()


def test_min_psnr_clean_without_masks_stops_before_anything_is_written(tmp_path):
    from gan_retouch.evaluate.validation import Validator

    def without_masks(options, device, dist):
        validator = Validator.from_options(options, device, dist)
        validator.names = tuple(name for name in validator.names if name not in ("psnr_mask", "psnr_clean"))
        return validator

    with pytest.raises(ConfigError, match="val.min_psnr_clean needs validation pairs with defect masks"):
        TrainingLoop(tiny_options(tmp_path, "val.min_psnr_clean=60"), RetouchModel, without_masks)
    assert not (tmp_path / "tiny").exists()
