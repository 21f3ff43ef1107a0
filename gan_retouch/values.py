"""Checks of option values. Python counts ``True`` as the integer 1, so ``isinstance(value, int)`` lets
``width: true`` through; these two reject booleans, so a YAML ``true`` where a number belongs is an error.
``closest`` names the valid value a misspelt one was probably meant to be."""

from __future__ import annotations

import difflib


def is_number(value: object) -> bool:
    """True for an int or a float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_integer(value: object) -> bool:
    """True for an int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def closest(name: str, candidates: list[str]) -> str | None:
    """The candidate most similar to ``name`` (for "did you mean"), or None when nothing is close."""
    matches = difflib.get_close_matches(name, candidates, n=1, cutoff=0.5)
    return matches[0] if matches else None
