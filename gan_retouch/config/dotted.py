"""Dotted keys (``train.lr``) in nested option mappings: read, write and remove one value."""

from __future__ import annotations

from typing import Any

MISSING = object()  # what ``get`` returns for a key that is not there (None is a valid option value)


def get(values: dict[str, Any], dotted: str) -> Any:
    """The value at ``dotted``, or ``MISSING``."""
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def put(values: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``dotted`` to ``value``, making the groups above it where they are missing."""
    *parents, leaf = dotted.split(".")
    node = values
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def pop(values: dict[str, Any], dotted: str) -> Any:
    """Remove ``dotted`` and return its value, or ``MISSING`` when it is not there."""
    *parents, leaf = dotted.split(".")
    node = get(values, ".".join(parents)) if parents else values
    if not isinstance(node, dict) or leaf not in node:
        return MISSING
    return node.pop(leaf)
