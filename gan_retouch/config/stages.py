"""Training stages (``stages:``): each a name, a step count and option overrides in force while it runs."""

from __future__ import annotations

import copy

from gan_retouch.config.checks import apply_values, shorten
from gan_retouch.config.files import Options, deep_merge
from gan_retouch.config.option_docs import Allowed
from gan_retouch.errors import ConfigError

STAGE_KEYS = ("name", "steps")
FIXED_KEYS = ("stages", "name", "device", "seed", "checkpoints_root", "results_root", "model")  # one per run


def validate_stages(options: Options, schema: Options, allowed: dict[str, Allowed]) -> None:
    """Check every stage: a name, a positive step count, and overrides that are valid options (the same key,
    type, range and enumeration checks as a recipe's values)."""
    for index, stage in enumerate(options.get("stages") or []):
        label = f"stages[{index}]"
        if not isinstance(stage, dict):
            raise ConfigError(f"{label} must be a mapping with name, steps and option overrides")
        steps = stage.get("steps")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps <= 0:
            raise ConfigError(f"{label}.steps must be a positive integer, got {shorten(steps)}")
        overrides = {k: v for k, v in stage.items() if k not in STAGE_KEYS}
        for key in FIXED_KEYS:
            if key in overrides:
                raise ConfigError(f"{label} cannot override {key!r}: it is fixed for the whole run")
        apply_values(schema, copy.deepcopy(options), overrides, "", schema, {}, label, allowed)


def stage_options(options: Options, index: int) -> Options:
    """The options in force during stage ``index``: its overrides on top; its ``losses`` replace the run's."""
    stage = options["stages"][index]
    resolved = copy.deepcopy(options)
    for key, value in stage.items():
        if key in STAGE_KEYS:
            continue
        if key == "losses":
            resolved["losses"] = copy.deepcopy(value)
        elif isinstance(value, dict):
            resolved[key] = deep_merge(resolved[key], value)
        else:
            resolved[key] = copy.deepcopy(value)
    return resolved
