"""Options: defaults (options/*.yaml) -> recipe (recipes/*.yaml, may inherit) -> --set overrides.

The option files are the single source of truth for option names, defaults, their meaning and the values they
accept. Every value a recipe, a stage or the command line gives is checked against the default's type and the
range or enumeration its comment declares; an unknown key or value is an error naming the closest valid one.
``files`` reads the YAML, ``checks`` checks values, ``stages`` handles ``stages:``; this module resolves.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from gan_retouch.config.checks import (
    ECHO_CHARS,
    NAME_BYTES,
    apply_values,
    check_run_name,
    flatten,
    known_part,
    shorten,
)
from gan_retouch.config.files import (
    OPTIONS_DIR,
    PACKAGE_DIR,
    RECIPE_ONLY_KEYS,
    RECIPES_DIR,
    OptionLoader,
    Options,
    bundled_recipes,
    deep_merge,
    find_recipe,
    load_recipe,
    load_yaml,
    option_defaults,
    option_docs,
    option_enumerations,
    option_ranges,
    option_values,
    parse_yaml,
    save_options,
)
from gan_retouch.config.renames import renamed
from gan_retouch.config.stages import STAGE_KEYS, stage_options, validate_stages
from gan_retouch.errors import ConfigError

__all__ = [
    "ECHO_CHARS", "NAME_BYTES", "OPTIONS_DIR", "PACKAGE_DIR", "RECIPES_DIR", "RECIPE_ONLY_KEYS", "STAGE_KEYS",
    "OptionLoader", "Options", "bundled_recipes", "check_run_name", "check_saved", "check_unused_inference",
    "deep_merge", "find_recipe", "flatten", "load_recipe", "load_yaml", "option_defaults", "option_docs",
    "option_enumerations", "option_ranges", "option_values", "parse_set_items", "parse_yaml", "resolve",
    "save_options", "shorten", "stage_options", "validate_stages", "with_inference",
]


def parse_set_items(items: list[str]) -> dict[str, Any]:
    """Turn ``["train.lr=2e-4", "data.crop=256"]`` into a nested mapping; values are YAML scalars."""
    nested: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got {shorten(item)} (e.g. --set train.lr=2e-4)")
        key, raw = item.split("=", 1)
        if not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set has an empty key in {shorten(item)}")
        try:
            value = parse_yaml(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            reason = " ".join(str(getattr(exc, "problem", None) or exc).split())
            raise ConfigError(f"--set {shorten(item)}: the value is not valid YAML ({reason})") from exc
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {shorten(item)} conflicts with another --set of {shorten(part)}")
        node[parts[-1]] = value
    return nested


def resolve(
    command: str, recipe: str | None = None, overrides: dict[str, Any] | None = None
) -> tuple[Options, dict[str, str]]:
    """Defaults -> recipe -> overrides, validated. Returns the options and where each value came from."""
    schema = option_defaults(command)
    allowed = option_values(command)
    options = copy.deepcopy(schema)
    sources: dict[str, str] = {}
    if recipe:
        recipe_name = Path(recipe).stem
        recipe_values = load_recipe(recipe)
        apply_values(schema, options, recipe_values, "", schema, sources, f"recipe {recipe_name}", allowed)
        if options.get("name") is None and "name" in schema:
            options["name"] = recipe_name
    if overrides:
        overrides = renamed(copy.deepcopy(overrides), "--set", schema)
        apply_values(schema, options, overrides, "", schema, sources, "--set", allowed)
    if "name" in schema and options.get("name") is None:
        options["name"] = command
    if "name" in schema:
        options["name"] = check_run_name(options["name"])
    if "stages" in schema:
        validate_stages(options, schema, allowed)
    return options, sources


def with_inference(options: Options, group: str) -> Options:
    """A command's option group (``retouch``, ``test``, ``bench``) with the inference plan's fields of this run
    added from the ``inference`` group: the settings ``engine.load.load_model`` applies to a checkpoint's plan."""
    return {**options["inference"], **options[group]}


def check_unused_inference(options: Options, command: str, used: tuple[str, ...], why: str) -> None:
    """A ConfigError when ``inference.*`` sets a field ``command`` does not read (``why`` says what it does
    instead): a value that would change nothing is refused, never ignored."""
    defaults = option_defaults(command)["inference"]
    for field, value in options["inference"].items():
        if field not in used and value != defaults.get(field):
            raise ConfigError(f"inference.{field}={value} does nothing in `gan-retouch {command}` ({why}); "
                              f"drop it (this command reads inference.{', inference.'.join(used)})")


def check_saved(command: str, values: Options, label: str) -> None:
    """Check option values that come back from a file (a checkpoint's saved options) as the loader checks a
    recipe's: type, range and enumeration, stages included. Keys this version does not know are left alone (a
    checkpoint written by another version may hold them; nothing reads them)."""
    schema = option_defaults(command)
    allowed = option_values(command)
    known = known_part(schema, values)
    apply_values(schema, copy.deepcopy(schema), {k: v for k, v in known.items() if k != "stages"}, "", schema, {},
                 label, allowed)
    if "stages" in known and "stages" in schema:
        validate_stages(deep_merge(schema, known), schema, allowed)
