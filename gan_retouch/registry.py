"""A tiny name -> constructor registry, so that a recipe can name a network or a loss.

Modules register with an explicit decorator; the package's ``__init__`` imports each module by name,
so adding a component is one new file plus one import line.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from gan_retouch.errors import ConfigError
from gan_retouch.values import closest

__all__ = ["DISCRIMINATORS", "GENERATORS", "LOSSES", "Registry", "check_arguments", "choice", "closest"]


def choice(value: Any, valid: list[str] | tuple[str, ...], key: str) -> Any:
    """Check that ``value`` is one of ``valid``; the error names the closest one. For component arguments and
    internal keys: an option's own enumeration is declared in its option file and checked when options load."""
    if value not in valid:
        hint = closest(str(value), [str(v) for v in valid])
        suggestion = f" Did you mean {hint!r}?" if hint else ""
        raise ConfigError(f"{key} must be one of {', '.join(map(str, valid))}; got {value!r}.{suggestion}")
    return value


class Registry:
    """Maps names to constructors (classes or functions) of one kind of component."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator that registers a constructor under ``name``."""

        def decorator(obj: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return decorator

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> Callable[..., Any]:
        """The constructor registered as ``name``; an unknown name lists the valid ones."""
        if name not in self._entries:
            hint = closest(str(name), self.names())
            suggestion = f" Did you mean {hint!r}?" if hint else ""
            raise ConfigError(
                f"unknown {self.kind} {name!r}.{suggestion} Available: {', '.join(self.names())}"
            )
        return self._entries[name]

    def describe(self, name: str) -> str:
        """The first line of the constructor's docstring."""
        doc = inspect.getdoc(self.get(name)) or ""
        return doc.splitlines()[0] if doc else ""

    def build(self, name: str, **kwargs: Any) -> Any:
        """Construct ``name`` with keyword arguments checked against its signature."""
        constructor = self.get(name)
        check_arguments(constructor, kwargs, f"{self.kind} {name!r}")
        return constructor(**kwargs)


def check_arguments(constructor: Callable[..., Any], kwargs: dict[str, Any], what: str) -> None:
    """Raise a ConfigError naming the closest valid argument when ``kwargs`` has an unknown key."""
    params = inspect.signature(constructor).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    valid = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    for key in kwargs:
        if key not in valid:
            hint = closest(key, valid)
            suggestion = f" Did you mean {hint!r}?" if hint else ""
            raise ConfigError(f"{what} has no argument {key!r}.{suggestion} Valid: {', '.join(valid)}")


GENERATORS = Registry("generator")
DISCRIMINATORS = Registry("discriminator")
LOSSES = Registry("loss")
