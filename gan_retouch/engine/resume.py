"""What a resumed run trains with: the schedule it was started with, unless the command line changes it.

A run's schedule is its length and the shape of its learning rate: ``train.steps``, the lr scheduler settings and
the ``stages``. ``--resume`` continues the same schedule (as pix2pix and BasicSR users expect), so a recipe whose
default differs from what the run was started with (``--steps 200`` then a plain ``--resume``) does not make the
run longer behind the user's back. A key the command line sets (``--steps N``, ``--set train.steps=N``) wins: the
run then lasts N steps and its learning-rate schedule is recomputed for N steps from the resumed step on.
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from pathlib import Path
from typing import Any

from gan_retouch.config import Options, check_saved, shorten
from gan_retouch.config.dotted import MISSING, get, put
from gan_retouch.engine.stage import plan_stages
from gan_retouch.errors import ConfigError

SCHEDULE_KEYS = ("train.steps", "train.scheduler", "train.decay_start", "train.step_size", "train.gamma", "stages")
INIT_KEYS = tuple(f"model.{part}.{key}" for part in ("generator", "discriminator")
                  for key in ("init", "init_key", "init_strict")) + ("model.generator.init_open_map",)
def set_by(key: str, command_line: Collection[str]) -> bool:
    """Whether the command line set ``key`` (or a group holding it, or a key inside it)."""
    return any(key == given or key.startswith(f"{given}.") or given.startswith(f"{key}.") for given in command_line)


def total_steps(options: Options) -> int:
    """The length of a run with these options (the sum of its stages)."""
    return sum(plan.steps for plan in plan_stages(options))


def resumed_options(options: Options, saved: Any, command_line: Collection[str] | None,
                    step: int) -> tuple[Options, list[str]]:
    """``options`` with each schedule key the command line does not set taken from ``saved`` (the options in the
    checkpoint resumed at ``step``), and what the user is told about it. ``command_line`` None: every option
    counts as given (callers of the Python API decide their options themselves)."""
    if not isinstance(saved, dict):
        return options, []
    command = "distill" if "distill" in options else "train"
    check_saved(command, {key: value for key, value in saved.items() if key in ("train", "stages")},
                "the options saved in the resumed checkpoint")  # they may replace the schedule
    resolved, kept = copy.deepcopy(options), []
    for key in SCHEDULE_KEYS:
        old = get(saved, key)
        if command_line is None or old is MISSING or set_by(key, command_line) or get(options, key) == old:
            continue
        put(resolved, key, copy.deepcopy(old))
        kept.append(f"{key}={shorten(get(options, key))}")
    notes = []
    if kept:
        notes.append(f"resumed at step {step} with the run's own schedule ({total_steps(saved)} steps), not "
                     f"{', '.join(kept)} from the options; give --steps N (or --set KEY=VALUE) with --resume to "
                     "change it")
    if total_steps(resolved) != total_steps(saved):
        notes.append(f"resumed at step {step}: the run now lasts {total_steps(resolved)} steps instead of "
                     f"{total_steps(saved)}, as asked; its learning-rate schedule is recomputed for the new length "
                     "from this step on (a decaying schedule rises again to where a run that long would be)")
    return resolved, notes


def weights_from_checkpoint(options: Options) -> Options:
    """The options to build a resumed run's networks with: no ``--init`` and no opened edit map, since every weight
    comes from the checkpoint resumed (the pretrained file may have moved since; the record stays in options)."""
    built = copy.deepcopy(options)
    for part in ("generator", "discriminator"):
        built["model"][part]["init"] = None
    built["model"]["generator"]["init_open_map"] = 0.0
    return built


def kept_init(options: Options, saved: Any, command_line: Collection[str] | None) -> tuple[Options, list[str]]:
    """``options`` with the run's own record of where its weights came from (``INIT_KEYS`` of ``saved``), which a
    resume keeps whatever the command line says, and a note when the command line asked for other weights."""
    if not isinstance(saved, dict):
        return options, []
    kept, notes = copy.deepcopy(options), []
    for key in INIT_KEYS:
        old = get(saved, key)
        if old is MISSING:
            continue
        if command_line and set_by(key, command_line) and get(options, key) != old:
            notes.append(f"{key}={shorten(get(options, key))} is not used on --resume: the weights come from the "
                         f"checkpoint resumed (the run started from {shorten(old)}); start a new run to use it")
        put(kept, key, copy.deepcopy(old))
    return kept, notes


def complete_error(run_dir: Path, step: int, total: int) -> ConfigError:
    """The one-line refusal to resume a run that has trained all its steps."""
    return ConfigError(
        f"{run_dir} is already complete: it trained all its {total} steps (it is at step {step}); nothing was trained "
        f"or overwritten. To train it longer, resume with --steps N (N > {step}); to train again from scratch, "
        "use --set name=<new name>"
    )
