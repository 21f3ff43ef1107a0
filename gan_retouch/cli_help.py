"""The options part of ``gan-retouch COMMAND --help`` and the resolved-options listing printed at start.

One option per line (``key: value  # [range] meaning  (source)``), like the option files themselves, so the
help reads the same in a terminal of any width: long lines wrap instead of squeezing a table into columns.
"""

from __future__ import annotations

import json
from typing import Any

from rich.markup import escape

from gan_retouch.config import ECHO_CHARS, flatten


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= ECHO_CHARS else f"{text[:ECHO_CHARS]}...({len(text)} characters)"


def source_of(key: str, sources: dict[str, str]) -> str:
    """Where a value came from: ``default``, ``recipe NAME`` or ``--set`` (a group's source covers its keys)."""
    return next((label for path, label in sources.items() if key == path or key.startswith(f"{path}.")), "default")


def options_help(options: dict[str, Any], sources: dict[str, str], docs: dict[str, str], title: str) -> str:
    """Every option with its value, its meaning (range first) and, when not the default, its source."""
    lines = [f"[bold]{escape(title)}[/] (key: value  # meaning; set any with --set KEY=VALUE)"]
    section = None
    for key, value in flatten(options).items():
        top = key.split(".", 1)[0] if "." in key else ""
        if top != section:
            section = top
            lines.append(f"\n[bold]{escape(top)}[/]" if top else "")
        meaning = docs.get(key, docs.get(key.rsplit(".", 1)[0], ""))
        source = source_of(key, sources)
        tag = f"  [magenta]({escape(source)})[/]" if source != "default" else ""
        lines.append(f"  [cyan]{escape(key)}[/]: {escape(_shown(value))}  [dim]# {escape(meaning)}[/]{tag}")
    return "\n".join(lines)


def options_listing(options: dict[str, Any], sources: dict[str, str]) -> str:
    """The resolved options, one ``key: value`` line each, values not at their default tagged with their source."""
    lines = []
    for key, value in flatten(options).items():
        source = source_of(key, sources)
        lines.append(f"{key}: {escape(_shown(value))}" + (f"  [magenta]# {source}[/]" if source != "default" else ""))
    return "\n".join(lines)
