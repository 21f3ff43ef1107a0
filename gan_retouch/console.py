"""The one rich console every command prints through, and the resolved-options table."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gan_retouch.config import flatten

console = Console(highlight=False)


def options_table(options: dict[str, Any], sources: dict[str, str], docs: dict[str, str], title: str) -> Table:
    """Every option with its value, where the value came from, and its meaning."""
    table = Table(title=title, show_lines=False, expand=False)
    table.add_column("option", style="cyan", no_wrap=True)
    table.add_column("value", style="bold")
    table.add_column("from", style="magenta")
    table.add_column("meaning", style="dim")
    for key, value in flatten(options).items():
        shown = json.dumps(value) if not isinstance(value, str) else value
        table.add_row(key, shown, _source_of(key, sources), docs.get(key, docs.get(key.rsplit(".", 1)[0], "")))
    return table


def options_listing(options: dict[str, Any], sources: dict[str, str]) -> str:
    """The resolved options, one ``key: value`` line each, values not at their default tagged with their source."""
    lines = []
    for key, value in flatten(options).items():
        source = _source_of(key, sources)
        shown = json.dumps(value) if not isinstance(value, str) else value
        lines.append(f"{key}: {escape(shown)}" + (f"  [magenta]# {source}[/]" if source != "default" else ""))
    return "\n".join(lines)


def _source_of(key: str, sources: dict[str, str]) -> str:
    return next((label for path, label in sources.items() if key == path or key.startswith(f"{path}.")), "default")
