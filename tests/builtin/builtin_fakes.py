"""The fake built-in set's sources: tiny training checkpoints (with EMA weights, a discriminator and optimizer
state, as `gan-retouch train` writes them; a student as `distill` writes it) and the record file."""

import torch

from gan_retouch.engine.checkpoint import save_checkpoint
from gan_retouch.registry import GENERATORS

TEACHER_ARGS = {"ngf": 8, "n_blocks": 1, "edit_mask": True}
STUDENT_ARGS = {"width": 8, "blocks": 1, "context": 1, "detail": 8, "detail_blocks": 0, "edit_mask": True}
TEACHER_PLAN = {"work_size": 128, "coarse_pass": True, "edit_floor": 0.25}
STUDENT_PLAN = {"work_size": 128, "coarse_pass": False, "edit_floor": 0.4}
RECORD = """\
teacher:
  command: gan-retouch train --recipe quickstart
  data: synthetic portraits
  time: 1 s
  scores: none, a test fake
student:
  command: gan-retouch distill --teacher checkpoints/quickstart/best.pt --student student
  data: synthetic portraits
  time: 1 s
  scores: none, a test fake
"""


def moved(module: torch.nn.Module, amount: float) -> torch.nn.Module:
    """``module`` with every parameter shifted off its identity start and its edit map opened, so that it edits."""
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(amount * torch.randn_like(parameter))
        module.open_edit_map(4.0)
    return module


def training_checkpoints(root):
    """A teacher checkpoint as `gan-retouch train` writes it (with EMA weights, a discriminator and optimizer
    state) and a student checkpoint as `distill` writes it (no EMA)."""
    teacher = moved(GENERATORS.build("autoretouch", **TEACHER_ARGS), 0.05)
    ema = moved(GENERATORS.build("autoretouch", **TEACHER_ARGS), 0.05)
    student = moved(GENERATORS.build("student_fast", **STUDENT_ARGS), 0.05)
    teacher_path = save_checkpoint({
        "kind": "train", "step": 7, "inference": TEACHER_PLAN,
        "generator": {"name": "autoretouch", "args": TEACHER_ARGS, "state_dict": teacher.state_dict()},
        "generator_ema": ema.state_dict(), "discriminator": {"name": "patchgan", "state_dict": {}},
        "optimizers": {"g": {"state": {}}},
    }, root / "teacher_run" / "best.pt")
    student_path = save_checkpoint({
        "kind": "distill", "step": 5, "inference": STUDENT_PLAN,
        "generator": {"name": "student_fast", "args": STUDENT_ARGS, "state_dict": student.state_dict()},
        "options": {"distill": {"teacher": str(teacher_path)}},
    }, root / "student_run" / "best.pt")
    return teacher_path, student_path, ema
