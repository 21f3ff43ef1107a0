"""What the option files say about each option: its one-line meaning and its valid range.

A comment may start with the option's range in interval notation, which ``config`` checks when options load::

    lr: 2.0e-4  # (0, inf) generator learning rate
    ema: 0.0  # [0, 1) generator EMA decay (0 = off)
    val_count: 8  # [1, inf) | null  validation pairs (null = the whole split)

``| null`` also allows null. For a list (or a list of lists) the range applies to each number in it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gan_retouch.errors import ConfigError
from gan_retouch.values import is_number

_NUMBER = r"-?inf|[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?"
RANGE = re.compile(
    rf"^(?P<open>[\[(])\s*(?P<low>{_NUMBER})\s*,\s*(?P<high>{_NUMBER})\s*(?P<close>[\])])"
    r"(?P<null>\s*\|\s*null)?(?:\s+|$)"
)
KEY_LINE = re.compile(r"^(\s*)([A-Za-z_]\w*):(.*)$")


@dataclass(frozen=True)
class Range:
    """A closed, open or half-open interval of valid numbers, optionally also allowing null."""

    low: float
    high: float
    low_open: bool
    high_open: bool
    nullable: bool
    text: str

    def contains(self, number: float) -> bool:
        above = number > self.low if self.low_open else number >= self.low
        below = number < self.high if self.high_open else number <= self.high
        return above and below and not math.isnan(number)

    def check(self, key: str, value: Any) -> None:
        """Raise a ConfigError naming ``key`` when ``value`` (a number, a list of them, or null) is out of range."""
        if value is None:
            if not self.nullable:
                raise ConfigError(f"{key} cannot be null; valid: {self.text}")
            return
        for item in _numbers(value):
            if not is_number(item):
                raise ConfigError(f"{key} must be a number in {self.text}, got {item!r}")
            if not self.contains(float(item)):
                raise ConfigError(f"{key} = {item!r} is out of range; valid: {self.text}")


def _numbers(value: Any) -> list[Any]:
    """The items of a value, nested lists flattened (``check_sizes: [[1, 64, 64], ...]``)."""
    if not isinstance(value, list):
        return [value]
    return [number for item in value for number in _numbers(item)]


def parse_range(comment: str) -> Range | None:
    """The range at the start of an option comment, or None when the comment declares none."""
    match = RANGE.match(comment)
    if match is None:
        return None
    return Range(
        low=float(match["low"]),
        high=float(match["high"]),
        low_open=match["open"] == "(",
        high_open=match["close"] == ")",
        nullable=bool(match["null"]),
        text=match.group(0).strip(),
    )


def read_comments(path: Path) -> tuple[dict[str, str], str | None]:
    """Dotted key -> comment of one option file, and the file's ``base:`` (the file it extends)."""
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    base = None
    for line in path.read_text(encoding="utf-8").splitlines():
        match = KEY_LINE.match(line)
        if not match:
            continue
        indent, key, rest = len(match.group(1)), match.group(2), match.group(3)
        if indent == 0 and key == "base":
            base = rest.strip()
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([k for _, k in stack] + [key])
        stack.append((indent, key))
        if " # " in rest:
            comments[dotted] = rest.split(" # ", 1)[1].strip()
    return comments, base


def comments_with_bases(options_dir: Path, command: str) -> dict[str, str]:
    """Every option comment of a command, following the ``base:`` chain (the command's own file wins)."""
    comments, base = read_comments(options_dir / f"{command}.yaml")
    return {**comments_with_bases(options_dir, base), **comments} if base else comments


def ranges_of(comments: dict[str, str]) -> dict[str, Range]:
    """Dotted key -> declared range, for the options whose comment declares one."""
    return {key: parsed for key, comment in comments.items() if (parsed := parse_range(comment)) is not None}
