"""Distillation loss terms: student vs teacher output, adapted features, and the teacher's own feature space.

They read what ``gan_retouch.distill.DistillExtension`` puts into the ``LossContext`` every step:

- ``teacher_output``: the frozen teacher's output for the batch.
- ``teacher_mask``: an edit-mask teacher's edit-map logits for the batch (None for a teacher without a map).
- ``student_features[name]`` / ``teacher_features[name]``: for each ``distill.feature_layers`` entry
  ``{student_module: teacher_module}``, the student map (1x1-adapted to the teacher's channels and resized to
  its spatial size) and the teacher map, both keyed by the student module name.
- ``student_features["perceptual:<layer>"]`` / ``teacher_features["perceptual:<layer>"]``: for each
  ``distill.perceptual_layers`` entry, the teacher's features of the student output (with gradients through
  the frozen teacher) and of the teacher output (the teacher used as its own perceptual network).

Under ``gan-retouch train`` these fields are empty and each term stops with a ConfigError saying so.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gan_retouch.errors import ConfigError
from gan_retouch.losses.base import LossContext, LossTerm
from gan_retouch.registry import LOSSES, choice

PERCEPTUAL_PREFIX = "perceptual:"
DISTANCES = ("l1", "mse", "charbonnier")


def distance(a: torch.Tensor, b: torch.Tensor, kind: str, eps: float = 1e-3) -> torch.Tensor:
    """Mean l1 | mse | charbonnier (sqrt(d^2 + eps^2)) distance between two same-shaped tensors."""
    if a.shape != b.shape:
        raise ConfigError(f"distillation compares tensors of different shapes: {tuple(a.shape)} vs {tuple(b.shape)}")
    diff = a.float() - b.float()
    if kind == "l1":
        return diff.abs().mean()
    if kind == "mse":
        return diff.pow(2).mean()
    return torch.sqrt(diff.pow(2) + eps * eps).mean()


def feature_pairs(ctx: LossContext, term: str, perceptual: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(student, teacher) map pairs of one kind (feature or perceptual), or a ConfigError naming the option."""
    student = ctx.need("student_features", term)
    teacher = ctx.need("teacher_features", term)
    names = [name for name in student if name.startswith(PERCEPTUAL_PREFIX) == perceptual]
    if not names:
        option = "distill.perceptual_layers" if perceptual else "distill.feature_layers"
        raise ConfigError(f"loss term {term!r} needs {option} to name at least one layer; it is empty in this run")
    missing = [name for name in names if name not in teacher]
    if missing:
        raise ConfigError(f"loss term {term!r}: no teacher features for {', '.join(missing)}")
    return [(student[name], teacher[name]) for name in names]


@LOSSES.register("distill_output")
class DistillOutput(LossTerm):
    """Student output vs the frozen teacher's output (kind: l1 | mse | charbonnier)."""

    needs_teacher = True

    def __init__(self, kind: str = "l1", eps: float = 1e-3) -> None:
        super().__init__()
        self.kind = choice(kind, DISTANCES, "distill_output kind")
        self.eps = eps

    def forward(self, ctx: LossContext) -> torch.Tensor:
        teacher = ctx.need("teacher_output", "distill_output")
        return distance(ctx.output, teacher.detach(), self.kind, self.eps)


@LOSSES.register("distill_map")
class DistillMap(LossTerm):
    """Binary cross-entropy of the student's edit-map logits against the teacher's edit map sigmoid(z_T).

    Both generators need ``edit_mask: true``. The target is the teacher's plain (unfloored) map, so the student
    learns to be as sure as its teacher where to edit; an ``edit_floor`` then removes the same faint edits from
    both. Without it a student learns its map from the data alone, opens it less surely, and a shared floor
    removes more of its right edits than of the teacher's (docs/history.md).
    """

    needs_teacher = True
    reads_pred_mask = True

    def forward(self, ctx: LossContext) -> torch.Tensor:
        logits = ctx.need("pred_mask", "distill_map (build the student with edit_mask: true)")
        teacher = ctx.need("teacher_mask", "distill_map (distill from a teacher built with edit_mask: true)")
        if teacher.shape != logits.shape:
            raise ConfigError(f"distill_map compares edit maps of different shapes: student {tuple(logits.shape)}, "
                              f"teacher {tuple(teacher.shape)}")
        return F.binary_cross_entropy_with_logits(logits.float(), torch.sigmoid(teacher.detach().float()))


@LOSSES.register("distill_feature")
class DistillFeature(LossTerm):
    """MSE between 1x1-adapted student features and the chosen teacher features, averaged over the layers."""

    needs_teacher = True

    def forward(self, ctx: LossContext) -> torch.Tensor:
        pairs = feature_pairs(ctx, "distill_feature", perceptual=False)
        return torch.stack([F.mse_loss(s.float(), t.detach().float()) for s, t in pairs]).mean()


@LOSSES.register("teacher_perceptual")
class TeacherPerceptual(LossTerm):
    """Distance between the teacher's features of the student output and of the teacher output (kind: l1 | mse)."""

    needs_teacher = True

    def __init__(self, kind: str = "l1") -> None:
        super().__init__()
        self.kind = choice(kind, ("l1", "mse"), "teacher_perceptual kind")

    def forward(self, ctx: LossContext) -> torch.Tensor:
        pairs = feature_pairs(ctx, "teacher_perceptual", perceptual=True)
        return torch.stack([distance(s, t.detach(), self.kind) for s, t in pairs]).mean()
