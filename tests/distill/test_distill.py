"""Distillation: the loss terms, the teacher extension (adapters, hooks), teacher checks and one short run."""

import json

import pytest
import torch

import gan_retouch.nets.autoretouch  # noqa: F401  (registers the teacher)
from gan_retouch.config import resolve
from gan_retouch.distill.command import apply_budget, run_distill
from gan_retouch.distill.model import TeacherFeatures
from gan_retouch.distill.teacher import load_teacher
from gan_retouch.engine.checkpoint import load_checkpoint, save_checkpoint
from gan_retouch.errors import CheckpointError, ConfigError
from gan_retouch.losses.base import LossContext
from gan_retouch.losses.distill import DistillFeature, DistillMap, DistillOutput, TeacherPerceptual
from gan_retouch.nets.base import run_generator
from gan_retouch.nets.student import Student
from gan_retouch.registry import GENERATORS

TEACHER_ARGS = {"ngf": 8, "n_blocks": 1}
STUDENT_ARGS = {"width": 4, "depth": 1, "levels": 2}
FAST_ARGS = {"width": 8, "blocks": 1, "context": 1, "detail": 8, "detail_blocks": 0}  # the default student, tiny
LAYERS = {"decoders.1": "blocks", "decoders.0": "up"}


def tiny_pair(perceptual=()):
    teacher = GENERATORS.build("autoretouch", **TEACHER_ARGS)
    student = Student(**STUDENT_ARGS)
    features = TeacherFeatures(teacher, student, torch.device("cpu"), LAYERS, list(perceptual))
    return teacher, student, features


def step_context(student, extension, images):
    ctx = LossContext(input=images, output=student(images), target=images)
    extension.fill(ctx, {"input": images, "target": images})
    return ctx


def test_adapters_map_student_features_onto_teacher_shapes():
    _, student, extension = tiny_pair()
    ctx = step_context(student, extension, torch.rand(2, 3, 40, 48))
    assert set(ctx.student_features) == set(LAYERS)
    for name in LAYERS:
        assert ctx.student_features[name].shape == ctx.teacher_features[name].shape
    assert ctx.teacher_features["decoders.1"].shape == (2, 16, 20, 24)  # teacher trunk: 2*ngf at 1/2
    assert ctx.teacher_features["decoders.0"].shape == (2, 8, 40, 48)  # teacher upsampler: ngf at full size
    assert [a.in_channels for a in extension.adapters] == [8, 4]
    assert ctx.teacher_output.shape == (2, 3, 40, 48) and not ctx.teacher_output.requires_grad


def test_unknown_module_names_list_the_available_ones():
    teacher = GENERATORS.build("autoretouch", **TEACHER_ARGS)
    student, cpu = Student(**STUDENT_ARGS), torch.device("cpu")
    with pytest.raises(ConfigError, match="teacher has no module 'trunk'.*blocks"):
        TeacherFeatures(teacher, student, cpu, {"decoders.0": "trunk"})
    with pytest.raises(ConfigError, match="student has no module 'decoder.0'.*decoders.0"):
        TeacherFeatures(teacher, student, cpu, {"decoder.0": "blocks"})


def test_short_distillation_run_lowers_the_losses():
    teacher, student, extension = tiny_pair(perceptual=["blocks"])
    terms = [DistillOutput(), DistillFeature(), TeacherPerceptual()]
    optimizer = torch.optim.Adam([*student.parameters(), *extension.adapters.parameters()], lr=1e-2)
    images = torch.rand(2, 3, 24, 24)
    history = []
    for _ in range(12):
        ctx = step_context(student, extension, images)
        values = [term(ctx) for term in terms]
        optimizer.zero_grad()
        sum(values).backward()
        optimizer.step()
        history.append([v.item() for v in values])
    for index in range(len(terms)):
        assert history[-1][index] < 0.8 * history[0][index], [h[index] for h in history]
    assert all(p.grad is None for p in teacher.parameters())


def test_terms_without_a_teacher_are_clear_errors():
    images = torch.rand(1, 3, 16, 16)
    ctx = LossContext(input=images, output=images, target=images)
    for term in (DistillOutput(), DistillFeature(), TeacherPerceptual()):
        with pytest.raises(ConfigError, match="needs"):
            term(ctx)
    _, student, extension = tiny_pair()
    with pytest.raises(ConfigError, match="distill.perceptual_layers"):
        TeacherPerceptual()(step_context(student, extension, torch.rand(1, 3, 32, 32)))
    with pytest.raises(ConfigError, match="kind must be one of"):
        DistillOutput(kind="huber")


def test_output_distances():
    a, b = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5)
    ctx = LossContext(input=a, output=a, target=a, teacher_output=b)
    assert DistillOutput("l1")(ctx).item() == pytest.approx(0.5)
    assert DistillOutput("mse")(ctx).item() == pytest.approx(0.25)
    assert DistillOutput("charbonnier")(ctx).item() == pytest.approx(0.5, abs=1e-5)


def map_pair():
    """A tiny edit-mask teacher with a confident, floored map and an edit-mask student with the same floor."""
    teacher = GENERATORS.build("autoretouch", **TEACHER_ARGS, edit_mask=True, edit_floor=0.25)
    with torch.no_grad():  # a trained-looking map: sure in places, faint in others (a fresh one is flat)
        torch.nn.init.normal_(teacher.tail.weight, std=0.5)
        teacher.tail.bias[3] = 3.0
    student = GENERATORS.build("student_fast", **FAST_ARGS, edit_mask=True, edit_floor=0.25)
    features = TeacherFeatures(teacher, student, torch.device("cpu"))
    return teacher, student, features


def test_distill_map_teaches_the_student_the_teachers_map():
    teacher, student, extension = map_pair()
    images = torch.rand(2, 3, 32, 32)
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-2)
    history = []
    for _ in range(40):
        output, logits = student(images)
        ctx = LossContext(input=images, output=output, target=images, pred_mask=logits)
        extension.fill(ctx, {"input": images, "target": images})
        loss = DistillMap()(ctx)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    assert history[-1] < 0.9 * history[0], history
    target = torch.sigmoid(ctx.teacher_mask)
    learned = torch.sigmoid(student(images)[1]).detach()
    assert (learned - target).abs().mean() < 0.5 * (torch.sigmoid(logits.new_tensor(-3.0)) - target).abs().mean()
    assert all(p.grad is None for p in teacher.parameters())


def test_distill_map_needs_two_edit_maps():
    images = torch.rand(1, 3, 16, 16)
    logits = torch.zeros(1, 1, 16, 16)
    with pytest.raises(ConfigError, match="distill_map.*student with edit_mask"):
        DistillMap()(LossContext(input=images, output=images, target=images))
    with pytest.raises(ConfigError, match="distill_map.*teacher built with edit_mask"):
        DistillMap()(LossContext(input=images, output=images, target=images, pred_mask=logits))
    _, student, extension = tiny_pair()  # a teacher without an edit map
    ctx = step_context(student, extension, images)
    assert ctx.teacher_mask is None
    ctx.pred_mask = logits
    with pytest.raises(ConfigError, match="teacher built with edit_mask"):
        DistillMap()(ctx)
    ctx.teacher_mask = torch.zeros(1, 1, 8, 8)
    with pytest.raises(ConfigError, match="different shapes"):
        DistillMap()(ctx)


def save_generator_checkpoint(path, kind, name, args):
    model = GENERATORS.build(name, **args)
    entry = {"name": name, "args": args, "state_dict": model.state_dict()}
    return save_checkpoint({"kind": kind, "generator": entry}, path)


def test_teacher_checks(tmp_path):
    with pytest.raises(ConfigError, match="needs a teacher"):
        load_teacher(None)
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_teacher(str(junk))
    empty = save_checkpoint({"kind": "train"}, tmp_path / "empty.pt")
    with pytest.raises(CheckpointError, match="holds no generator"):
        load_teacher(str(empty))
    student_ckpt = save_generator_checkpoint(tmp_path / "student.pt", "distill", "student", STUDENT_ARGS)
    with pytest.raises(CheckpointError, match="is a distillation checkpoint.*not a teacher"):
        load_teacher(str(student_ckpt))
    good = save_generator_checkpoint(tmp_path / "teacher.pt", "train", "autoretouch", TEACHER_ARGS)
    teacher, info = load_teacher(str(good))
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    assert info["generator"]["name"] == "autoretouch"


def test_budget_option_reports_and_picks(capsys):
    options, _ = resolve("distill", "student", {"distill": {"budget_mb": 10.0, "budget_gmacs": 65.0}})
    assert options["model"]["generator"]["name"] == "student_fast"  # the recipe's default student
    assert apply_budget(options)["fits_gmacs"]
    options, _ = resolve("distill", "student", {"model": {"generator": {"name": "student"}},
                                                "distill": {"budget_gmacs": 1.0}})
    with pytest.raises(ConfigError, match="generator 'student' has no argument 'blocks'"):
        apply_budget(options)  # student_fast's arguments kept for the other student: a clear error
    options["model"]["generator"]["args"] = {}
    assert not apply_budget(options)["fits_gmacs"]
    assert "does not fit" in capsys.readouterr().out
    options, _ = resolve("distill", "student", {"distill": {"budget_gmacs": 12.0, "fit_budget": True}})
    picked = apply_budget(options)
    assert picked["gmacs"] <= 12.0 and options["model"]["generator"]["args"] == picked["args"]
    options, _ = resolve("distill", "student", {"model": {"generator": {"name": "autoretouch"}},
                                                "distill": {"budget_mb": 10.0}})
    with pytest.raises(ConfigError, match="budgets apply to the student generators"):
        apply_budget(options)


def test_distill_map_needs_an_edit_map_teacher_before_training(tmp_path):
    plain = save_generator_checkpoint(tmp_path / "plain.pt", "train", "autoretouch", TEACHER_ARGS)
    overrides = {"device": "cpu", "checkpoints_root": str(tmp_path / "ck"), "distill": {"teacher": str(plain)}}
    options, _ = resolve("distill", "student", overrides)
    with pytest.raises(ConfigError, match=r"distill_map .*plain\.pt has none.*losses\.distill_map=null"):
        run_distill(options)
    assert not (tmp_path / "ck").exists()  # stopped before the run folder was made
    masked = save_generator_checkpoint(tmp_path / "masked.pt", "train", "autoretouch",
                                       {**TEACHER_ARGS, "edit_mask": True})
    overrides = {**overrides, "distill": {"teacher": str(masked)},
                 "model": {"generator": {"args": {**FAST_ARGS, "edit_mask": False, "edit_floor": 0.0}}}}
    options, _ = resolve("distill", "student", overrides)
    with pytest.raises(ConfigError, match="distill_map needs a student with an edit map"):
        run_distill(options)
    options, _ = resolve("distill", "student", {**overrides, "losses": {"distill_map": None, "keep": None}})
    assert "distill_map" not in options["losses"]


def test_distill_end_to_end(tmp_path):
    teacher_path = save_generator_checkpoint(tmp_path / "teacher.pt", "train", "autoretouch",
                                             {**TEACHER_ARGS, "edit_mask": True})
    overrides = {
        "device": "cpu", "checkpoints_root": str(tmp_path / "ck"), "results_root": str(tmp_path / "res"),
        "data": {"batch_size": 2, "crop": 32, "val_count": 2, "synthetic": {"size": 48, "val_count": 2}},
        "model": {"generator": {"args": FAST_ARGS}},
        "losses": {"l1": None, "teacher_perceptual": {"weight": 0.05}},  # l1 belongs to another module
        "train": {"steps": 3, "log_every": 1, "save_every": 3},
        "val": {"every": 0, "samples": 1},
        "distill": {"teacher": str(teacher_path), "latency_size": 64, "latency_time_s": 0.01},
    }
    options, _ = resolve("distill", "student", overrides)
    assert run_distill(options) == 0
    run_dir = tmp_path / "ck" / "student"
    report = json.loads((run_dir / "distill_report.json").read_text())
    assert set(report["rows"]) == {"teacher", "student", "identity"}
    assert report["rows"]["teacher"]["cpu_ms"] > 0 and report["rows"]["teacher"]["psnr"] > 0
    state = load_checkpoint(run_dir)
    assert state["kind"] == "distill" and "adapters" in state["extension"]
    with pytest.raises(CheckpointError, match="not a teacher"):
        load_teacher(str(run_dir))
    assert state["generator"]["name"] == "student_fast" and state["generator"]["args"]["edit_mask"]
    student = GENERATORS.build("student_fast", **state["generator"]["args"])
    student.load_state_dict(state["generator"]["state_dict"])
    assert report["rows"]["student"]["params"] == sum(p.numel() for p in student.parameters())
    assert run_generator(student, torch.rand(1, 3, 32, 32))[0].shape == (1, 3, 32, 32)


def test_report_measures_an_fp16_teacher_as_float32_and_leaves_it_as_it_was(tmp_path):
    """distill.teacher_fp16 keeps the teacher in half precision; the report crashed counting its MACs."""
    from gan_retouch.distill.report import write_report

    teacher = GENERATORS.build("autoretouch", **TEACHER_ARGS).half()
    scores = {"psnr": 30.0, "ssim": 0.9, "ms_ssim": 0.95}
    final = {**scores, **{f"identity_{key}": value - 1 for key, value in scores.items()}}
    options = {"distill": {"latency_size": 32, "latency_time_s": 0.01}}
    path = write_report(tmp_path, options, scores, final, teacher, Student(**STUDENT_ARGS), "teacher.pt")
    row = json.loads(path.read_text())["rows"]["teacher"]
    assert row["gmacs"] > 0 and row["cpu_ms"] > 0
    assert row["mb_fp16"] == pytest.approx(row["mb_fp32"] / 2, rel=0.01)
    assert all(p.dtype == torch.float16 for p in teacher.parameters())


def test_a_failure_while_scoring_the_teacher_still_closes_the_run(tmp_path, monkeypatch):
    """The teacher is scored inside fit()'s try/finally: the lock is released and the process group left."""
    import fcntl

    from gan_retouch.engine import loop as loop_module
    from gan_retouch.evaluate.validation import Validator

    teacher_path = save_generator_checkpoint(tmp_path / "teacher.pt", "train", "autoretouch",
                                             {**TEACHER_ARGS, "edit_mask": True})
    overrides = {
        "device": "cpu", "checkpoints_root": str(tmp_path / "ck"), "results_root": str(tmp_path / "res"),
        "data": {"batch_size": 2, "crop": 32, "val_count": 2, "synthetic": {"size": 48, "val_count": 2}},
        "model": {"generator": {"args": FAST_ARGS}}, "train": {"steps": 1},
        "val": {"every": 0, "samples": 1, "lpips": False},
        "distill": {"teacher": str(teacher_path), "latency_size": 32, "latency_time_s": 0.01},
    }
    options, _ = resolve("distill", "student", overrides)
    left = []
    monkeypatch.setattr(loop_module.distributed, "shutdown", left.append)

    def broken(self, model):  # the first validation of a distillation scores the teacher
        raise RuntimeError("the teacher broke")

    monkeypatch.setattr(Validator, "evaluate", broken)
    with pytest.raises(RuntimeError, match="the teacher broke") as failure:
        run_distill(options)
    assert len(left) == 1
    with open(tmp_path / "ck" / "student" / ".lock") as handle:  # the failed run (still referenced) let it go
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert failure.value is not None
