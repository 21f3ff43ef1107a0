"""Budget checks for the students: does a configuration fit a size / compute budget, and which is the largest that does.

Figures come from ``inference.profile.model_figures`` (state-dict size in MB = 10^6 bytes, MACs from FlopCounterMode).
Both student families have a grid: ``student`` (depthwise gUNet: width x depth x levels) and ``student_fast``
(dense convs at 1/4 resolution: width x blocks x context). Students are built on the ``meta`` device here, so
checking a whole grid takes about a second and allocates nothing.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

from gan_retouch.errors import ConfigError
from gan_retouch.inference.profile import model_figures
from gan_retouch.nets.student import Student
from gan_retouch.nets.student_fast import FastStudent
from gan_retouch.registry import check_arguments
from gan_retouch.values import is_number

GRID_WIDTHS = (16, 24, 32, 48, 64)
GRID_DEPTHS = (1, 2, 3)
GRID_LEVELS = (2, 3, 4)
FAST_GRID = {"width": (16, 24, 32, 48, 64, 96), "blocks": (1, 2, 3, 4), "context": (1, 2, 3)}
STUDENTS = {"student": Student, "student_fast": FastStudent}  # the generators a budget can size


def grid_axes(name: str = "student") -> dict[str, tuple[int, ...]]:
    """The arguments the budget grid of student ``name`` varies, with their values."""
    _check_name(name)
    if name == "student":
        return {"width": GRID_WIDTHS, "depth": GRID_DEPTHS, "levels": GRID_LEVELS}
    return dict(FAST_GRID)


def student_figures(args: dict[str, Any], size: int = 1024, name: str = "student") -> dict[str, Any]:
    """Parameters, MB (fp32 and fp16) and GMACs at ``size`` x ``size`` of student ``name`` built from ``args``."""
    _check_name(name)
    check_arguments(STUDENTS[name], args, f"generator {name!r}")
    with torch.device("meta"):
        model = STUDENTS[name](**args)
    return {"args": dict(args), **model_figures(model, size)}


def fits(
    args: dict[str, Any], budget_mb: float | None, budget_gmacs: float | None, size: int = 1024,
    name: str = "student",
) -> tuple[bool, dict[str, Any]]:
    """Whether student ``name`` with ``args`` fits both budgets (None = no limit), and its figures.

    The size budget applies to the fp32 file (the competition's rule); GMACs are counted at ``size`` x ``size``.
    """
    _check_budgets(budget_mb, budget_gmacs)
    figures = student_figures(args, size, name)
    fits_mb = budget_mb is None or figures["mb_fp32"] <= budget_mb
    fits_gmacs = budget_gmacs is None or figures["gmacs"] <= budget_gmacs
    figures.update(budget_mb=budget_mb, budget_gmacs=budget_gmacs, fits_mb=fits_mb, fits_gmacs=fits_gmacs)
    return fits_mb and fits_gmacs, figures


def grid(base_args: dict[str, Any] | None = None, name: str = "student") -> list[dict[str, Any]]:
    """Every configuration of student ``name``'s grid (see ``grid_axes``), other arguments from ``base_args``."""
    base = dict(base_args or {})
    axes = grid_axes(name)
    return [{**base, **dict(zip(axes, values, strict=True))} for values in itertools.product(*axes.values())]


def largest_fitting(
    budget_mb: float | None, budget_gmacs: float | None, size: int = 1024, base_args: dict[str, Any] | None = None,
    name: str = "student",
) -> dict[str, Any]:
    """The arguments of student ``name``'s grid that fit both budgets with the most MACs (then parameters).

    ``base_args`` fixes the arguments outside the grid (e.g. ``lowres``, ``scale``). Raises a ConfigError naming
    the smallest configuration's figures when nothing fits.
    """
    _check_budgets(budget_mb, budget_gmacs)
    if budget_mb is None and budget_gmacs is None:
        raise ConfigError("picking the largest student that fits needs a budget: give --budget-mb and/or "
                          "--budget-gmacs (distill.budget_mb / distill.budget_gmacs)")
    checked = [fits(args, budget_mb, budget_gmacs, size, name) for args in grid(base_args, name)]
    fitting = [figures for ok, figures in checked if ok]
    if not fitting:
        smallest = min((figures for _, figures in checked), key=lambda f: (f["gmacs"], f["mb_fp32"]))
        raise ConfigError(
            f"no student of the grid fits {describe_budget(budget_mb, budget_gmacs, size)}: the smallest, "
            f"{smallest['args']}, has {smallest['mb_fp32']:.2f} MB (fp32) and {smallest['gmacs']:.1f} GMACs. "
            "Raise the budget" + ("; for a GMACs budget, lowres 2 or 4 (--set model.generator.args.lowres=4) "
                                  "also cuts the MACs about 4x or 16x." if name == "student" else ".")
        )
    best = max(fitting, key=lambda f: (f["gmacs"], f["params"]))
    return best["args"]


def describe_budget(budget_mb: float | None, budget_gmacs: float | None, size: int = 1024) -> str:
    """``<= 10 MB (fp32), <= 65 GMACs at 1024x1024`` for messages and reports."""
    parts = []
    if budget_mb is not None:
        parts.append(f"<= {budget_mb:g} MB (fp32)")
    if budget_gmacs is not None:
        parts.append(f"<= {budget_gmacs:g} GMACs at {size}x{size}")
    return ", ".join(parts) if parts else "no budget"


def _check_name(name: str) -> None:
    if name not in STUDENTS:
        raise ConfigError(f"budgets apply to the student generators ({', '.join(STUDENTS)}), not {name!r}; "
                          "use `gan-retouch bench --budget-mb` for other networks")


def _check_budgets(budget_mb: float | None, budget_gmacs: float | None) -> None:
    for name, value in (("budget_mb", budget_mb), ("budget_gmacs", budget_gmacs)):
        if value is not None and (not is_number(value) or value <= 0):
            raise ConfigError(f"distill.{name} must be a positive number or null, got {value!r}")
