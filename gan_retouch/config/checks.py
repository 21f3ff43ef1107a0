"""Checking option values: the key exists, the type matches the default's, the value is one its comment declares.

A mapping whose default is empty (``{}``) is free-form: the component that consumes it (a network's arguments,
the loss terms) checks its keys; inside it, ``null`` removes an entry.
"""

from __future__ import annotations

from typing import Any

from gan_retouch.config.files import deep_merge
from gan_retouch.config.option_docs import Allowed
from gan_retouch.errors import ConfigError
from gan_retouch.values import closest, is_integer, is_number

ECHO_CHARS = 80  # a value echoed in a message is cut to this many characters (a pasted file stays out of it)
NAME_BYTES = 255  # the longest folder name common file systems allow


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


def _check_leaf(path: str, default: Any, value: Any, valid: Allowed | None) -> Any:
    """One option's value, type-converted and checked against the values its comment declares."""
    if value is None and valid is not None and valid.nullable:
        return None
    if default is None and valid is not None and valid.interval is not None and isinstance(value, str):
        value = _as_number(value)  # "1e-4" is a string in YAML 1.1
    value = _check_type(path, default, value)
    if valid is not None:
        valid.check(path, value)
    return value


def apply_values(
    schema: dict, values: dict, update: dict, prefix: str, root: dict, sources: dict, label: str,
    allowed: dict[str, Allowed],
) -> None:
    """Write ``update`` (from ``label``: a recipe, --set, a stage) into ``values``, checking every key and value."""
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
            apply_values(default, values[key], value, f"{path}.", root, sources, label, allowed)
        elif isinstance(default, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{path} must be a mapping, got {shorten(value)} (from {label})")
            values[key] = deep_merge(values[key], value, drop_none=True)
            sources[path] = label
        else:
            values[key] = _check_leaf(f"{path} (from {label})", default, value, allowed.get(path))
            sources[path] = label


def known_part(schema: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The part of ``values`` whose keys the schema knows (options saved by another version may hold others)."""
    known: dict[str, Any] = {}
    for key, value in values.items():
        if key not in schema:
            continue
        default = schema[key]
        known[key] = known_part(default, value) if isinstance(default, dict) and default and isinstance(value, dict) \
            else value
    return known
