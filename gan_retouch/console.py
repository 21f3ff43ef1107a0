"""The one rich console every command prints through."""

from rich.console import Console

console = Console(highlight=False)
