"""`gan-retouch distill`: train the student (``model.generator``) under a frozen teacher, then compare them.

The training loop is the engine's ``Trainer``; this module adds the teacher through a ``DistillExtension``:
every step it runs the teacher on the batch (no gradients), fills the loss context with the teacher output,
the feature pairs of ``distill.feature_layers`` (student maps through learned 1x1 adapters, resized to the
teacher map) and, when ``distill.perceptual_layers`` is set, the teacher's features of the student output
and of the teacher output. At the end it prints and saves (``distill_report.json`` in the run folder) a
table of teacher vs student vs identity on the validation set.
"""

from __future__ import annotations

import copy
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.table import Table
from torch import nn

from gan_retouch.config import stage_options
from gan_retouch.console import console
from gan_retouch.engine.checkpoint import describe_network, load_generator
from gan_retouch.engine.trainer import Extension, Trainer
from gan_retouch.errors import CheckpointError, ConfigError
from gan_retouch.losses.base import LossContext
from gan_retouch.losses.distill import PERCEPTUAL_PREFIX
from gan_retouch.nets.base import run_generator
from gan_retouch.nets.profile import count_macs, count_parameters, model_size_mb
from gan_retouch.nets.student_budget import describe_budget, fits, largest_fitting

REPORT_NAME = "distill_report.json"
PROBE_SIZE = 64  # side of the dry run that discovers the feature maps' channel counts


def addressable_names(model: nn.Module) -> list[str]:
    """Module names a recipe can pick (at most two levels deep, e.g. ``encoders.1``, ``blocks.3``)."""
    return [name for name, _ in model.named_modules() if name and name.count(".") <= 1]


def find_module(model: nn.Module, name: str, role: str) -> nn.Module:
    """The submodule ``name`` of ``model``; an unknown name lists the addressable ones."""
    modules = dict(model.named_modules())
    if not name or name not in modules:
        raise ConfigError(f"{role} has no module {name!r}. Available: {', '.join(addressable_names(model))} "
                          "(deeper names from named_modules() work too)")
    return modules[name]


def load_teacher(path: str | None) -> tuple[nn.Module, dict[str, Any]]:
    """The frozen teacher (eval, no gradients) from a training checkpoint, EMA weights when present."""
    if not path:
        raise ConfigError("distill needs a teacher: give --teacher checkpoints/<run>/best.pt (distill.teacher)")
    teacher, info = load_generator(path, use_ema=True)
    name = info["generator"].get("name")
    if info.get("kind") == "distill" or name == "student":
        raise CheckpointError(
            f"{info['path']} is a distillation checkpoint (kind {info.get('kind')!r}, generator "
            f"{describe_network(info['generator'])}), not a teacher. Give a checkpoint written by "
            "`gan-retouch train` (e.g. checkpoints/quickstart/best.pt)."
        )
    teacher.eval()
    teacher.requires_grad_(False)
    return teacher, info


class DistillExtension(Extension):
    """Teacher outputs and features for the distillation loss terms; the feature adapters are trained.

    ``attach`` must run before ``trainable_modules``: it hooks the student and the teacher and builds one
    1x1-conv adapter per ``feature_layers`` entry from the channel counts seen in a small dry run.
    """

    kind = "distill"

    def __init__(
        self,
        teacher: nn.Module,
        feature_layers: dict[str, str] | None = None,
        perceptual_layers: list[str] | None = None,
        teacher_fp16: bool = False,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.teacher = teacher.eval().requires_grad_(False)
        self.feature_layers = dict(feature_layers or {})
        self.perceptual_layers = list(perceptual_layers or [])
        self.teacher_fp16 = teacher_fp16
        self.info = dict(info or {})
        self.adapters: nn.ModuleList | None = None
        self.device = torch.device("cpu")
        self._student_maps: dict[str, torch.Tensor] = {}
        self._teacher_maps: dict[str, torch.Tensor] = {}
        for name in {*self.feature_layers.values(), *self.perceptual_layers}:
            find_module(teacher, name, "the teacher").register_forward_hook(_recorder(self._teacher_maps, name))

    def attach(self, student: nn.Module, device: torch.device) -> None:
        """Hook the student's feature layers, move the teacher to ``device`` and build the adapters."""
        if self.teacher_fp16 and device.type != "cuda":
            raise ConfigError("distill.teacher_fp16 needs a CUDA device; this run is on "
                              f"{device} (set distill.teacher_fp16=false)")
        self.device = device
        self.teacher.to(device)
        if self.teacher_fp16:
            self.teacher.half()
        for name in self.feature_layers:
            find_module(student, name, "the student").register_forward_hook(_recorder(self._student_maps, name))
        probe = torch.rand(1, 3, PROBE_SIZE, PROBE_SIZE, device=device)
        with torch.no_grad():
            run_generator(student, probe)
            self._run_teacher(probe)
        self.adapters = nn.ModuleList(
            nn.Conv2d(self._student_maps[s].shape[1], self._teacher_maps[t].shape[1], 1)
            for s, t in self.feature_layers.items()
        ).to(device)

    def trainable_modules(self) -> dict[str, nn.Module]:
        if self.adapters is None:
            raise RuntimeError("DistillExtension.attach must run before trainable_modules")
        return {"adapters": self.adapters} if self.feature_layers else {}

    def _run_teacher(self, images: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The teacher's output in float32 (its hooks record the chosen layers on the way)."""
        if self.teacher_fp16:
            images = images.half()
        return run_generator(self.teacher, images, mask)[0].float()

    def adapt(self, student_map: torch.Tensor, index: int, size: torch.Size) -> torch.Tensor:
        """A student map through its 1x1 adapter, resized (bilinear) to the teacher map's spatial ``size``."""
        adapted = self.adapters[index](student_map)
        if adapted.shape[-2:] != size:
            adapted = F.interpolate(adapted, size=size, mode="bilinear", align_corners=False)
        return adapted

    def fill_context(self, ctx: LossContext, batch: dict[str, Any]) -> None:
        with torch.no_grad():
            ctx.teacher_output = self._run_teacher(batch["input"], batch.get("mask"))
        for index, (student_name, teacher_name) in enumerate(self.feature_layers.items()):
            target = self._teacher_maps[teacher_name].float()
            ctx.student_features[student_name] = self.adapt(self._student_maps[student_name], index,
                                                            target.shape[-2:])
            ctx.teacher_features[student_name] = target
        if self.perceptual_layers:
            with torch.no_grad():
                self._run_teacher(ctx.teacher_output, batch.get("mask"))
                reference = {name: self._teacher_maps[name].float() for name in self.perceptual_layers}
            self._run_teacher(ctx.output, batch.get("mask"))  # gradients flow through the frozen teacher
            for name in self.perceptual_layers:
                ctx.student_features[PERCEPTUAL_PREFIX + name] = self._teacher_maps[name].float()
                ctx.teacher_features[PERCEPTUAL_PREFIX + name] = reference[name]

    def checkpoint_info(self) -> dict[str, Any]:
        return {
            "teacher": self.info.get("path"),
            "teacher_generator": self.info.get("generator"),
            "feature_layers": self.feature_layers,
            "perceptual_layers": self.perceptual_layers,
        }

    def on_finish(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        """Print and save the teacher vs student vs identity table (quality, size, MACs, CPU latency)."""
        options = trainer.options["distill"]
        size, runs = int(options["latency_size"]), int(options["latency_runs"])
        teacher_scores = trainer.validate(lambda x: self._run_teacher(x))
        rows = {
            "teacher": {**_quality(teacher_scores), **model_figures(self.teacher, size, runs)},
            "student": {**_quality(metrics), **model_figures(trainer.eval_generator(), size, runs)},
            "identity": {**_quality(metrics, "identity_"), "params": 0, "mb_fp32": 0.0, "mb_fp16": 0.0,
                         "gmacs": 0.0, "cpu_ms": None},
        }
        report = {"size": size, "latency_runs": runs, "teacher": self.info.get("path"), "rows": rows}
        path = Path(trainer.run_dir) / REPORT_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2), encoding="utf-8")
        console.print(report_table(report))
        console.print(f"saved {path}")


def _recorder(store: dict[str, torch.Tensor], name: str):
    """A forward hook that keeps the module's latest output in ``store[name]`` (a plain function, so that
    deep copies of the hooked network, e.g. the EMA copy, share it instead of copying the teacher)."""

    def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
        store[name] = output[0] if isinstance(output, tuple) else output

    return hook


def _quality(metrics: dict[str, float], prefix: str = "") -> dict[str, float | None]:
    return {key: metrics.get(prefix + key) for key in ("psnr", "ssim", "ms_ssim")}


def model_figures(model: nn.Module, size: int, runs: int) -> dict[str, Any]:
    """Parameters, MB (fp32, fp16), GMACs and median CPU latency (ms, fp32, batch 1) at ``size`` x ``size``."""
    return {
        "params": count_parameters(model),
        "mb_fp32": model_size_mb(model, torch.float32),
        "mb_fp16": model_size_mb(model, torch.float16),
        "gmacs": count_macs(model, (1, 3, size, size)) / 1e9,
        "cpu_ms": cpu_latency_ms(model, size, runs),
    }


def cpu_latency_ms(model: nn.Module, size: int, runs: int) -> float:
    """Median wall time in ms of ``runs`` fp32 CPU forward passes on one ``size`` x ``size`` image (1 warm-up)."""
    if runs < 1:
        raise ConfigError(f"distill.latency_runs must be >= 1, got {runs}")
    cpu_model = copy.deepcopy(model).float().cpu().eval()
    image = torch.rand(1, 3, size, size)
    times = []
    with torch.no_grad():
        run_generator(cpu_model, image)
        for _ in range(runs):
            start = time.perf_counter()
            run_generator(cpu_model, image)
            times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def report_table(report: dict[str, Any]) -> Table:
    """The rich table of a distillation report."""
    size = report["size"]
    table = Table(title=f"teacher vs student vs identity (validation set; size figures at {size}x{size})")
    for column in ("model", "PSNR", "SSIM", "MS-SSIM", "params", "MB fp32", "MB fp16", "GMACs",
                   f"CPU ms (median of {report['latency_runs']})"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, row in report["rows"].items():
        table.add_row(
            name, _fmt(row["psnr"], ".2f"), _fmt(row["ssim"], ".4f"), _fmt(row["ms_ssim"], ".4f"),
            f"{row['params']:,}", f"{row['mb_fp32']:.2f}", f"{row['mb_fp16']:.2f}", f"{row['gmacs']:.1f}",
            _fmt(row["cpu_ms"], ".0f"),
        )
    return table


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def apply_budget(options: dict[str, Any]) -> dict[str, Any] | None:
    """Report whether the student fits ``distill.budget_*``; with ``fit_budget`` pick the largest that does.

    Returns the student's figures (None without a budget); may replace ``model.generator.args``.
    """
    distill = options["distill"]
    budget_mb, budget_gmacs = distill["budget_mb"], distill["budget_gmacs"]
    if budget_mb is None and budget_gmacs is None and not distill["fit_budget"]:
        return None
    generator = options["model"]["generator"]
    if generator["name"] != "student":
        raise ConfigError(f"distill budgets apply to the 'student' generator, not {generator['name']!r}; "
                          "use `gan-retouch bench --budget-mb` for other networks")
    size = int(distill["latency_size"])
    if distill["fit_budget"]:
        grid_args = ("width", "depth", "levels")
        base = {k: v for k, v in generator.get("args", {}).items() if k not in grid_args}
        generator["args"] = largest_fitting(budget_mb, budget_gmacs, size, base_args=base)
    ok, figures = fits(generator.get("args", {}), budget_mb, budget_gmacs, size)
    verdict = "[green]fits[/]" if ok else "[red]does not fit[/]"
    console.print(
        f"student {generator.get('args', {})}: {figures['mb_fp32']:.2f} MB fp32 ({figures['mb_fp16']:.2f} fp16), "
        f"{figures['gmacs']:.1f} GMACs at {size}x{size}: {verdict} {describe_budget(budget_mb, budget_gmacs, size)}"
    )
    return figures


def check_perceptual_option(options: dict[str, Any]) -> None:
    """A teacher_perceptual term without ``distill.perceptual_layers`` is an error before training starts."""
    specs = [options["losses"]] + [stage_options(options, i)["losses"] for i in range(len(options["stages"] or []))]
    uses = any(
        (entry.get("type", label) if isinstance(entry, dict) else label) == "teacher_perceptual"
        for spec in specs for label, entry in spec.items()
    )
    if uses and not options["distill"]["perceptual_layers"]:
        raise ConfigError("the loss term teacher_perceptual needs distill.perceptual_layers (teacher module "
                          "names, e.g. [blocks]); set it or remove the term")


def run_distillation(options: dict[str, Any]) -> int:
    """Distill ``distill.teacher`` into ``model.generator`` and print the comparison table."""
    distill = options["distill"]
    teacher, info = load_teacher(distill["teacher"])
    check_perceptual_option(options)
    apply_budget(options)
    extension = DistillExtension(
        teacher,
        feature_layers=distill["feature_layers"],
        perceptual_layers=distill["perceptual_layers"],
        teacher_fp16=bool(distill["teacher_fp16"]),
        info=info,
    )
    Trainer(options, extension).fit()
    return 0
