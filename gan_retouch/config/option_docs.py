"""What the option files say about each option: its one-line meaning and the values it accepts.

A comment may start with the option's valid values, which ``config`` checks when options load: a range in
interval notation, named values, or both, separated by ``|``::

    lr: 2.0e-4  # (0, inf) generator learning rate
    ema: 0.0  # [0, 1) generator EMA decay (0 = off)
    val_count: 8  # [1, inf) | null  validation pairs (null = the whole split)
    amp: auto  # auto | off | bf16 | fp16  mixed precision
    work_size: auto  # auto | null | [32, inf)  the longer side the network sees

``null``, ``true`` and ``false`` are YAML's null and booleans; other names are strings. A declaration has a range
or at least two alternatives; the meaning follows after whitespace. For a list (or a list of lists) the
declaration applies to each item in it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gan_retouch.errors import ConfigError
from gan_retouch.values import closest, is_number

_NUMBER = r"-?inf|[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?"
INTERVAL = re.compile(
    rf"(?P<open>[\[(])\s*(?P<low>{_NUMBER})\s*,\s*(?P<high>{_NUMBER})\s*(?P<close>[\])])(?=\s|$)"
)
NAME = re.compile(r"(?P<name>[A-Za-z0-9_][\w.\-]*)(?=\s|$)")
SEPARATOR = re.compile(r"\s*\|\s*")
LITERALS: dict[str, Any] = {"null": None, "true": True, "false": False}
KEY_LINE = re.compile(r"^(\s*)([A-Za-z_]\w*):(.*)$")


@dataclass(frozen=True)
class Interval:
    """A closed, open or half-open interval of valid numbers."""

    low: float
    high: float
    low_open: bool
    high_open: bool

    def contains(self, number: float) -> bool:
        above = number > self.low if self.low_open else number >= self.low
        below = number < self.high if self.high_open else number <= self.high
        return above and below and not math.isnan(number)


@dataclass(frozen=True)
class Allowed:
    """The values an option accepts: numbers in ``interval`` (when declared) and the named ``choices``."""

    interval: Interval | None
    choices: tuple[Any, ...]
    text: str

    @property
    def nullable(self) -> bool:
        return any(choice is None for choice in self.choices)

    @property
    def names(self) -> tuple[str, ...]:
        """The string choices (what a misspelt value is compared with)."""
        return tuple(choice for choice in self.choices if isinstance(choice, str))

    def contains(self, number: float) -> bool:
        return self.interval is not None and self.interval.contains(number)

    def allows(self, item: Any) -> bool:
        """Whether one value (not a list) is valid; booleans and numbers are told apart (``True`` is not 1)."""
        if any(item is choice or (type(item) is type(choice) and item == choice) for choice in self.choices):
            return True
        return is_number(item) and self.contains(float(item))

    def check(self, key: str, value: Any) -> None:
        """Raise a ConfigError naming ``key`` when ``value`` (a value, a list of them, or null) is not valid."""
        if value is None:
            if not self.nullable:
                raise ConfigError(f"{key} cannot be null; valid: {self.text}")
            return
        for item in _items(value):
            if self.allows(item):
                continue
            if is_number(item) and self.interval is not None:
                raise ConfigError(f"{key} = {item!r} is out of range; valid: {self.text}")
            if self.interval is not None and not self.names:
                raise ConfigError(f"{key} must be a number in {self.text}, got {item!r}")
            hint = closest(str(item), list(self.names))
            suggestion = f" Did you mean {hint!r}?" if hint else ""
            raise ConfigError(f"{key} = {item!r} is not valid; valid: {self.text}.{suggestion}")


def _items(value: Any) -> list[Any]:
    """The items of a value, nested lists flattened (``check_sizes: [[1, 64, 64], ...]``)."""
    if not isinstance(value, list):
        return [value]
    return [item for element in value for item in _items(element)]


def _literal(name: str) -> Any:
    """A declared name as a value: null, true, false, an integer, or the string itself."""
    if name in LITERALS:
        return LITERALS[name]
    return int(name) if re.fullmatch(r"-?\d+", name) else name


def parse_allowed(comment: str) -> Allowed | None:
    """The values declared at the start of an option comment, or None when the comment declares none."""
    interval, choices, position = None, [], 0
    while True:
        match = INTERVAL.match(comment, position)
        if match and interval is None:
            interval = Interval(float(match["low"]), float(match["high"]), match["open"] == "(", match["close"] == ")")
        elif (match := NAME.match(comment, position)) is not None:
            choices.append(_literal(match["name"]))
        else:
            return None
        position = match.end()
        separator = SEPARATOR.match(comment, position)
        if separator is None:
            break
        position = separator.end()
    if interval is None and len(choices) < 2:
        return None
    return Allowed(interval, tuple(choices), comment[:position].strip())


def parse_range(comment: str) -> Allowed | None:
    """The declaration at the start of a comment when it holds a numeric range (the options checked as numbers)."""
    allowed = parse_allowed(comment)
    return allowed if allowed is not None and allowed.interval is not None else None


def read_comments(path: Path) -> tuple[dict[str, str], list[str]]:
    """Dotted key -> comment of one option file, and the files it extends (its ``base:``: one name or a list)."""
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    bases: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = KEY_LINE.match(line)
        if not match:
            continue
        indent, key, rest = len(match.group(1)), match.group(2), match.group(3)
        if indent == 0 and key == "base":
            bases = [name.strip() for name in rest.strip().strip("[]").split(",") if name.strip()]
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([k for _, k in stack] + [key])
        stack.append((indent, key))
        if " # " in rest:
            comments[dotted] = rest.split(" # ", 1)[1].strip()
    return comments, bases


def comments_with_bases(options_dir: Path, command: str) -> dict[str, str]:
    """Every option comment of a command, following its ``base:`` files in order (a later file wins, the
    command's own last; a key a file sets without a comment keeps its base's, as a per-command default does)."""
    comments, bases = read_comments(options_dir / f"{command}.yaml")
    inherited: dict[str, str] = {}
    for base in bases:
        inherited.update(comments_with_bases(options_dir, base))
    return {**inherited, **comments}


def allowed_of(comments: dict[str, str]) -> dict[str, Allowed]:
    """Dotted key -> declared valid values, for the options whose comment declares them."""
    return {key: parsed for key, comment in comments.items() if (parsed := parse_allowed(comment)) is not None}
