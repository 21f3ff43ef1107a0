"""The distillation model: the student is the engine's generator; a frozen teacher and 1x1 adapters are added
through ``RetouchModel``'s two hooks, so the loop, checkpoints and resume are the engine's own."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gan_retouch.config import Options
from gan_retouch.distill.teacher import find_module, recorder
from gan_retouch.engine.distributed import DistInfo
from gan_retouch.engine.model import RetouchModel
from gan_retouch.engine.precision import Precision
from gan_retouch.errors import ConfigError
from gan_retouch.losses.base import LossContext
from gan_retouch.losses.distill import PERCEPTUAL_PREFIX
from gan_retouch.nets.base import run_generator

PROBE_SIZE = 64  # side of the dry run that discovers the feature maps' channel counts


class TeacherFeatures:
    """The teacher's output and recorded maps, and the student maps matched to them by learned 1x1 adapters.

    ``feature_layers`` maps student module names to teacher module names; ``perceptual_layers`` are teacher
    modules whose features of the student output and of the teacher output are compared.
    """

    def __init__(self, teacher: nn.Module, student: nn.Module, device: torch.device,
                 feature_layers: dict[str, str] | None = None, perceptual_layers: list[str] | None = None,
                 teacher_fp16: bool = False) -> None:
        if teacher_fp16 and device.type != "cuda":
            raise ConfigError(f"distill.teacher_fp16 needs a CUDA device; this run is on {device} "
                              "(set distill.teacher_fp16=false)")
        self.teacher = teacher.eval().requires_grad_(False).to(device)
        if teacher_fp16:
            self.teacher.half()
        self.teacher_fp16 = teacher_fp16
        self.feature_layers = dict(feature_layers or {})
        self.perceptual_layers = list(perceptual_layers or [])
        self._student_maps: dict[str, torch.Tensor] = {}
        self._teacher_maps: dict[str, torch.Tensor] = {}
        for name in {*self.feature_layers.values(), *self.perceptual_layers}:
            find_module(teacher, name, "the teacher").register_forward_hook(recorder(self._teacher_maps, name))
        for name in self.feature_layers:
            find_module(student, name, "the student").register_forward_hook(recorder(self._student_maps, name))
        probe = torch.rand(1, 3, PROBE_SIZE, PROBE_SIZE, device=device)
        with torch.no_grad():
            run_generator(student, probe)
            self.run_teacher(probe)
        self.adapters = nn.ModuleList(
            nn.Conv2d(self._student_maps[s].shape[1], self._teacher_maps[t].shape[1], 1)
            for s, t in self.feature_layers.items()
        ).to(device)

    def run_teacher(self, images: torch.Tensor, mask: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The teacher's output and edit-map logits (None without a map) in float32; its hooks record the
        chosen layers on the way."""
        if self.teacher_fp16:
            images = images.half()
        output, logits = run_generator(self.teacher, images, mask)
        return output.float(), None if logits is None else logits.float()

    def adapt(self, student_map: torch.Tensor, index: int, size: torch.Size) -> torch.Tensor:
        """A student map through its 1x1 adapter, resized (bilinear) to the teacher map's spatial ``size``."""
        adapted = self.adapters[index](student_map)
        if adapted.shape[-2:] != size:
            adapted = F.interpolate(adapted, size=size, mode="bilinear", align_corners=False)
        return adapted

    def fill(self, ctx: LossContext, batch: dict[str, Any]) -> None:
        """Teacher output, adapted feature pairs and perceptual pairs for one step's loss context."""
        with torch.no_grad():
            ctx.teacher_output, ctx.teacher_mask = self.run_teacher(batch["input"], batch.get("mask"))
        for index, (student_name, teacher_name) in enumerate(self.feature_layers.items()):
            target = self._teacher_maps[teacher_name].float()
            ctx.student_features[student_name] = self.adapt(self._student_maps[student_name], index,
                                                            target.shape[-2:])
            ctx.teacher_features[student_name] = target
        if self.perceptual_layers:
            with torch.no_grad():
                self.run_teacher(ctx.teacher_output, batch.get("mask"))  # records the reference features
                reference = {name: self._teacher_maps[name].float() for name in self.perceptual_layers}
            self.run_teacher(ctx.output, batch.get("mask"))  # gradients flow through the frozen teacher
            for name in self.perceptual_layers:
                ctx.student_features[PERCEPTUAL_PREFIX + name] = self._teacher_maps[name].float()
                ctx.teacher_features[PERCEPTUAL_PREFIX + name] = reference[name]


class DistillModel(RetouchModel):
    """A ``RetouchModel`` whose generator (the student) also learns from a frozen teacher."""

    kind = "distill"
    provides_teacher = True
    builtin_role = "student"  # `distill --init builtin` starts the student from the built-in student

    def __init__(self, options: Options, device: torch.device, dist: DistInfo, precision: Precision,
                 teacher: nn.Module, teacher_info: dict[str, Any]) -> None:
        super().__init__(options, device, dist, precision)
        distill = options["distill"]
        self.teacher_info = teacher_info
        self.features = TeacherFeatures(teacher, self.generator, device, distill["feature_layers"],
                                        distill["perceptual_layers"], bool(distill["teacher_fp16"]))

    def trainable_extras(self) -> dict[str, nn.Module]:
        return {"adapters": self.features.adapters} if self.features.feature_layers else {}

    def add_teacher_context(self, ctx: LossContext, batch: dict[str, Any]) -> None:
        self.features.fill(ctx, batch)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "extension_info": {
            "teacher": self.teacher_info.get("path"),
            "teacher_generator": self.teacher_info.get("generator"),
            "feature_layers": self.features.feature_layers,
            "perceptual_layers": self.features.perceptual_layers,
        }}
