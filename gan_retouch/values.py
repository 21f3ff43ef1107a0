"""Type checks for option values. Python counts ``True`` as the integer 1, so ``isinstance(value, int)`` lets
``width: true`` through; these two reject booleans, so a YAML ``true`` where a number belongs is an error."""

from __future__ import annotations


def is_number(value: object) -> bool:
    """True for an int or a float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_integer(value: object) -> bool:
    """True for an int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)
