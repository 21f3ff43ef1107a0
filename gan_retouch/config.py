"""Options: defaults (options/*.yaml) -> recipe (recipes/*.yaml, may inherit) -> --set overrides.

The option files are the single source of truth for option names, defaults and their meaning. Every value a
recipe or the command line gives is checked against the default's type; an unknown key is an error naming the
closest valid key. A mapping whose default is empty (``{}``) is free-form: the component that consumes it
(a network's arguments, the loss terms) checks its keys. Inside a free-form mapping, ``null`` removes an entry.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from gan_retouch.errors import ConfigError
from gan_retouch.option_docs import Range, comments_with_bases, ranges_of
from gan_retouch.registry import closest
from gan_retouch.values import is_integer, is_number

PACKAGE_DIR = Path(__file__).resolve().parent
OPTIONS_DIR = PACKAGE_DIR / "bundled" / "options"
RECIPES_DIR = PACKAGE_DIR / "bundled" / "recipes"
RECIPE_ONLY_KEYS = ("base", "description")
STAGE_KEYS = ("name", "steps")
ECHO_CHARS = 80  # a value echoed in a message is cut to this many characters (a pasted file stays out of it)
NAME_BYTES = 255  # the longest folder name common file systems allow

Options = dict[str, Any]


class OptionLoader(yaml.SafeLoader):
    """YAML with YAML 1.2 booleans: only true/false are booleans, so ``amp: off`` stays the string "off"."""


OptionLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
OptionLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def shorten(value: Any) -> str:
    """``repr(value)`` for a message, cut to its first 80 characters plus its length when it is longer."""
    text = repr(value)
    return text if len(text) <= ECHO_CHARS else f"{text[:ECHO_CHARS]}...({len(text)} characters)"


def check_run_name(name: Any) -> str:
    """The run name as a string, or a ConfigError: it must be one plain folder name, since the run's files go to
    ``checkpoints_root/<name>/`` and ``results_root/<name>/`` and must stay inside them."""
    text = str(name) if isinstance(name, (str, int)) and not isinstance(name, bool) else None
    problem = None
    if text is None:
        problem = f"it is a {type(name).__name__}, not a name"
    elif not text.strip() or text in (".", ".."):
        problem = "it names no folder"
    elif any(sep in text for sep in ("/", "\\")):
        problem = "it holds a path separator"
    elif any(ord(char) < 32 or char == "\x7f" for char in text):
        problem = "it holds control characters"
    elif len(text.encode("utf-8")) > NAME_BYTES:
        problem = f"it is longer than a folder name may be ({NAME_BYTES} bytes)"
    if problem:
        raise ConfigError(f"name={shorten(name)} is not a plain folder name ({problem}): the run's files go to "
                          "<checkpoints_root>/<name>/ and <results_root>/<name>/, so give one folder name, e.g. "
                          "--set name=my_run (the roots move with checkpoints_root and results_root)")
    return text


def parse_yaml(text: str) -> Any:
    """Parse option YAML (recipes, option files, --set values) with YAML 1.2 booleans."""
    return yaml.load(text, Loader=OptionLoader)  # a SafeLoader subclass: no arbitrary objects


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    if not path.is_file():
        raise ConfigError(f"file not found: {path}")
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of options, not a {type(data).__name__}")
    return data


def bundled_recipes() -> list[str]:
    """Names of the recipes shipped with the package."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def find_recipe(spec: str, relative_to: Path | None = None) -> Path:
    """Resolve a recipe given as a path, or by the name of a bundled recipe."""
    candidates = [Path(spec)]
    if relative_to is not None:
        candidates.insert(0, relative_to / spec)
        candidates.insert(1, relative_to / f"{spec}.yaml")
    candidates.append(RECIPES_DIR / spec)
    candidates.append(RECIPES_DIR / f"{spec}.yaml")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    hint = closest(Path(spec).stem, bundled_recipes())
    suggestion = f" Did you mean {hint!r}?" if hint else ""
    raise ConfigError(
        f"recipe {spec!r} not found: no such file, and no bundled recipe of that name.{suggestion} "
        f"Bundled recipes: {', '.join(bundled_recipes())}"
    )


def load_recipe(spec: str, relative_to: Path | None = None, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A recipe with its ``base:`` chain merged in (the base first); not yet validated."""
    path = find_recipe(spec, relative_to).resolve()
    if path in _chain:
        cycle = " -> ".join(p.name for p in (*_chain, path))
        raise ConfigError(f"recipe inheritance loops: {cycle}")
    data = load_yaml(path)
    base = data.pop("base", None)
    data.pop("description", None)
    if base is None:
        return data
    parent = load_recipe(str(base), path.parent, (*_chain, path))
    return deep_merge(parent, data)


def deep_merge(base: dict[str, Any], update: dict[str, Any], drop_none: bool = False) -> dict[str, Any]:
    """Deep-merge two plain mappings (no validation); ``update`` wins, nested mappings merge.

    With ``drop_none`` a ``null`` in ``update`` removes the entry (the rule inside free-form option mappings).
    """
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if value is None and drop_none:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value, drop_none)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def option_defaults(command: str) -> Options:
    """The documented defaults of a command, following the ``base:`` chain of its option file."""
    path = OPTIONS_DIR / f"{command}.yaml"
    if not path.is_file():
        raise ConfigError(f"no option file for command {command!r} in {OPTIONS_DIR}")
    data = load_yaml(path)
    base = data.pop("base", None)
    return deep_merge(option_defaults(base), data) if base else data


def option_docs(command: str) -> dict[str, str]:
    """Dotted option key -> the one-line comment beside it in the option files (range first, when declared)."""
    return comments_with_bases(OPTIONS_DIR, command)


def option_ranges(command: str) -> dict[str, Range]:
    """Dotted option key -> the valid range its comment declares."""
    return ranges_of(option_docs(command))


def flatten(options: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value for every leaf (empty and free-form mappings are leaves)."""
    flat: dict[str, Any] = {}
    for key, value in options.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def _all_keys(schema: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in schema.items():
        keys.append(f"{prefix}{key}")
        if isinstance(value, dict) and value:
            keys.extend(_all_keys(value, f"{prefix}{key}."))
    return keys


def _check_type(path: str, default: Any, value: Any) -> Any:
    """The value, converted where lossless (int -> float, '2e-4' -> float), or a ConfigError."""
    if default is None:
        return value
    if value is None:
        if isinstance(default, str):
            return value
        raise ConfigError(f"{path} cannot be null (default: {shorten(default)})")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if is_integer(value):
            return value
    elif isinstance(default, float):
        if is_number(value):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif isinstance(default, str):
        if isinstance(value, str) or default == "auto":
            return value
    elif isinstance(default, list):
        if isinstance(value, list):
            return value
    elif isinstance(default, dict):
        if isinstance(value, dict):
            return value
    raise ConfigError(
        f"{path} must be of type {type(default).__name__} like its default {shorten(default)}, "
        f"got {type(value).__name__} {shorten(value)}"
    )


def _as_number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def _apply(
    schema: dict, values: dict, update: dict, prefix: str, root: dict, sources: dict, label: str,
    ranges: dict[str, Range],
) -> None:
    for key, value in update.items():
        path = f"{prefix}{key}"
        if key not in schema:
            hint = closest(path, _all_keys(root))
            suggestion = f" Did you mean {hint!r}?" if hint else ""
            raise ConfigError(f"unknown option {shorten(path)} (from {label}).{suggestion}")
        default = schema[key]
        if isinstance(default, dict) and default:
            if not isinstance(value, dict):
                raise ConfigError(f"{path} is a group of options; give a mapping, got {shorten(value)} (from {label})")
            _apply(default, values[key], value, f"{path}.", root, sources, label, ranges)
        elif isinstance(default, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{path} must be a mapping, got {shorten(value)} (from {label})")
            values[key] = deep_merge(values[key], value, drop_none=True)
            sources[path] = label
        else:
            valid = ranges.get(path)
            if value is None and valid is not None and valid.nullable:
                values[key] = None
            else:
                if default is None and valid is not None and isinstance(value, str):
                    value = _as_number(value)  # "1e-4" is a string in YAML 1.1
                values[key] = _check_type(f"{path} (from {label})", default, value)
                if valid is not None:
                    valid.check(f"{path} (from {label})", values[key])
            sources[path] = label


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


def validate_stages(options: Options, schema: Options, ranges: dict[str, Range]) -> None:
    """Check every stage: a name, a positive step count, and overrides that are valid options."""
    for index, stage in enumerate(options.get("stages") or []):
        label = f"stages[{index}]"
        if not isinstance(stage, dict):
            raise ConfigError(f"{label} must be a mapping with name, steps and option overrides")
        steps = stage.get("steps")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps <= 0:
            raise ConfigError(f"{label}.steps must be a positive integer, got {shorten(steps)}")
        overrides = {k: v for k, v in stage.items() if k not in STAGE_KEYS}
        for key in ("stages", "name", "device", "seed", "checkpoints_root", "results_root", "model"):
            if key in overrides:
                raise ConfigError(f"{label} cannot override {key!r}: it is fixed for the whole run")
        _apply(schema, copy.deepcopy(options), overrides, "", schema, {}, label, ranges)


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


def resolve(
    command: str, recipe: str | None = None, overrides: dict[str, Any] | None = None
) -> tuple[Options, dict[str, str]]:
    """Defaults -> recipe -> overrides, validated. Returns the options and where each value came from."""
    schema = option_defaults(command)
    ranges = option_ranges(command)
    options = copy.deepcopy(schema)
    sources: dict[str, str] = {}
    if recipe:
        recipe_values = load_recipe(recipe)
        recipe_name = Path(recipe).stem
        _apply(schema, options, recipe_values, "", schema, sources, f"recipe {recipe_name}", ranges)
        if options.get("name") is None and "name" in schema:
            options["name"] = recipe_name
    if overrides:
        _apply(schema, options, overrides, "", schema, sources, "--set", ranges)
    if "name" in schema and options.get("name") is None:
        options["name"] = command
    if "name" in schema:
        options["name"] = check_run_name(options["name"])
    if "stages" in schema:
        validate_stages(options, schema, ranges)
    return options, sources


def save_options(options: Options, path: Path) -> None:
    """Write the resolved options so that ``--recipe <path>`` reproduces the run exactly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Resolved options of this run: `gan-retouch <command> --recipe <this file>` reproduces it.\n"
    path.write_text(header + yaml.safe_dump(options, sort_keys=False), encoding="utf-8")
