"""`gan-retouch distill`: train the student (``model.generator``) under a frozen teacher, then compare them.

The loop is the engine's; ``DistillModel`` adds the teacher and the feature adapters. At the end the report
compares teacher, student and identity on the validation set (``distill_report.json`` in the run folder).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from gan_retouch.config import stage_options
from gan_retouch.console import console
from gan_retouch.distill.budget import describe_budget, fits, grid_axes, largest_fitting
from gan_retouch.distill.model import DistillModel
from gan_retouch.distill.report import write_report
from gan_retouch.distill.teacher import load_teacher
from gan_retouch.engine.loop import TrainingLoop
from gan_retouch.errors import ConfigError
from gan_retouch.evaluate.validation import Validator


def apply_budget(options: dict[str, Any]) -> dict[str, Any] | None:
    """Report whether the student fits ``distill.budget_*``; with ``fit_budget`` pick the largest that does.

    Returns the student's figures (None without a budget); may replace ``model.generator.args``.
    """
    distill = options["distill"]
    budget_mb, budget_gmacs = distill["budget_mb"], distill["budget_gmacs"]
    if budget_mb is None and budget_gmacs is None and not distill["fit_budget"]:
        return None
    generator = options["model"]["generator"]
    name = generator["name"]
    size = int(distill["latency_size"])
    if distill["fit_budget"]:
        axes = grid_axes(name)
        base = {k: v for k, v in generator.get("args", {}).items() if k not in axes}
        generator["args"] = largest_fitting(budget_mb, budget_gmacs, size, base_args=base, name=name)
    ok, figures = fits(generator.get("args", {}), budget_mb, budget_gmacs, size, name)
    verdict = "[green]fits[/]" if ok else "[red]does not fit[/]"
    console.print(
        f"{name} {generator.get('args', {})}: {figures['mb_fp32']:.2f} MB fp32 ({figures['mb_fp16']:.2f} fp16), "
        f"{figures['gmacs']:.1f} GMACs at {size}x{size}: {verdict} {describe_budget(budget_mb, budget_gmacs, size)}"
    )
    return figures


def uses_term(options: dict[str, Any], term: str) -> bool:
    """Whether the recipe's ``losses`` (or any stage's) weights the loss term ``term``."""
    specs = [options["losses"]] + [stage_options(options, i)["losses"] for i in range(len(options["stages"] or []))]
    return any(
        (entry.get("type", label) if isinstance(entry, dict) else label) == term
        for spec in specs for label, entry in spec.items()
    )


def check_perceptual_option(options: dict[str, Any]) -> None:
    """A teacher_perceptual term without ``distill.perceptual_layers`` is an error before training starts."""
    if uses_term(options, "teacher_perceptual") and not options["distill"]["perceptual_layers"]:
        raise ConfigError("the loss term teacher_perceptual needs distill.perceptual_layers (teacher module "
                          "names, e.g. [blocks]); set it or remove the term")


def check_map_option(options: dict[str, Any], teacher: Any, teacher_path: str | None) -> None:
    """A distill_map term needs an edit map on both sides; say so before training starts."""
    if not uses_term(options, "distill_map"):
        return
    fix = "or learn the map from the data: --set losses.distill_map=null \"losses.edit_map={weight: 0.25}\""
    if not getattr(teacher, "edit_mask", False):
        raise ConfigError(f"the loss term distill_map learns the teacher's edit map, but the teacher {teacher_path} "
                          "has none (it was trained without model.generator.args.edit_mask: true); distil from "
                          f"an edit-mask teacher (the quickstart and autoretouch recipes), {fix}")
    if not options["model"]["generator"].get("args", {}).get("edit_mask", False):
        raise ConfigError("the loss term distill_map needs a student with an edit map: set "
                          f"model.generator.args.edit_mask=true, {fix}")


def run_distill(options: dict[str, Any], command_line: Collection[str] | None = None) -> int:
    """Distill ``distill.teacher`` into ``model.generator`` and print the comparison table. ``command_line``: the
    option keys the command line set (a resumed run keeps its own schedule for the rest)."""
    teacher, info = load_teacher(options["distill"]["teacher"])
    check_perceptual_option(options)
    check_map_option(options, teacher, info.get("path"))
    apply_budget(options)

    def model_factory(options, device, dist, precision) -> DistillModel:
        return DistillModel(options, device, dist, precision, teacher=teacher, teacher_info=info)

    loop = TrainingLoop(options, model_factory, Validator.from_options, command_line)
    features = loop.model.features
    # The frozen teacher scores the same at any step: score it first, on every rank (validation is a collective
    # under DDP), inside fit() so that a failure there still closes the run and leaves the process group.
    teacher_scores: dict[str, float] = {}
    final = loop.fit(first=lambda: teacher_scores.update(loop.validation.evaluate(
        lambda x: features.run_teacher(x)[0])))
    if loop.dist.is_main:
        write_report(loop.run_dir, options, teacher_scores, final, features.teacher,
                     loop.model.eval_generator(), info.get("path"))
    return 0
