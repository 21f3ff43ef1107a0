"""The option and recipe files: YAML with YAML 1.2 booleans, recipes found by name or path, ``base:`` chains.

The option files (``options/<command>.yaml``) hold every option's default and, in its comment, its meaning and
the values it accepts (``option_docs``); recipes (``recipes/*.yaml``) set values and may inherit with ``base:``.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from gan_retouch.config.option_docs import Allowed, allowed_of, comments_with_bases
from gan_retouch.config.renames import renamed
from gan_retouch.errors import ConfigError
from gan_retouch.values import closest

PACKAGE_DIR = Path(__file__).resolve().parents[1]
OPTIONS_DIR = PACKAGE_DIR / "bundled" / "options"
RECIPES_DIR = PACKAGE_DIR / "bundled" / "recipes"
RECIPE_ONLY_KEYS = ("base", "description")

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
    data = renamed(load_yaml(path), f"recipe {path.name}")  # each file's old keys, before it meets its base
    base = data.pop("base", None)
    data.pop("description", None)
    if base is None:
        return data
    parent = load_recipe(str(base), path.parent, (*_chain, path))
    return deep_merge(parent, data)


def option_defaults(command: str) -> Options:
    """The documented defaults of a command, following the ``base:`` files of its option file (one name or a
    list, merged in order; the command's own values win: its per-command defaults of a shared group)."""
    path = OPTIONS_DIR / f"{command}.yaml"
    if not path.is_file():
        raise ConfigError(f"no option file for command {command!r} in {OPTIONS_DIR}")
    data = load_yaml(path)
    bases = data.pop("base", None) or []
    merged: Options = {}
    for base in [bases] if isinstance(bases, str) else bases:
        merged = deep_merge(merged, option_defaults(base))
    return deep_merge(merged, data)


def option_docs(command: str) -> dict[str, str]:
    """Dotted option key -> the one-line comment beside it in the option files (valid values first, if declared)."""
    return comments_with_bases(OPTIONS_DIR, command)


def option_values(command: str) -> dict[str, Allowed]:
    """Dotted option key -> the valid values (a range, an enumeration, or both) its comment declares."""
    return allowed_of(option_docs(command))


def option_ranges(command: str) -> dict[str, Allowed]:
    """Dotted option key -> the declaration of the options whose comment declares a numeric range."""
    return {key: allowed for key, allowed in option_values(command).items() if allowed.interval is not None}


def option_enumerations(command: str) -> dict[str, Allowed]:
    """Dotted option key -> the declaration of the options whose comment names their valid values (besides null)."""
    return {key: allowed for key, allowed in option_values(command).items()
            if any(choice is not None for choice in allowed.choices)}


def save_options(options: Options, path: Path) -> None:
    """Write the resolved options so that ``--recipe <path>`` reproduces the run exactly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Resolved options of this run: `gan-retouch <command> --recipe <this file>` reproduces it.\n"
    path.write_text(header + yaml.safe_dump(options, sort_keys=False), encoding="utf-8")
