"""Option keys that moved, still accepted under their old name: the value goes to the new key and a note names it.

The inference plan's fields were each command's own keys (``retouch.tile``, ``test.work_size``,
``export.edit_floor``, ``model.generator.face_width``, ``train.strength``, ...); they are one ``inference`` group now
(options/inference.yaml). A recipe or ``--set`` with an old key keeps working and says what to write instead.
"""

from __future__ import annotations

from typing import Any

from gan_retouch.config.dotted import MISSING, get, pop, put
from gan_retouch.console import console
from gan_retouch.errors import ConfigError

PLAN_FIELDS = ("work_size", "coarse_pass", "edit_floor", "face_width", "protect_features", "strength", "tile",
               "tile_overlap", "memory_mb", "precision", "backend")
_FACES = ("face_width", "protect_features")
_MOVED = {"retouch": PLAN_FIELDS,
          "bench": ("work_size", "coarse_pass", *_FACES, "tile", "tile_overlap", "memory_mb", "precision", "backend"),
          "test": ("work_size", "coarse_pass", "edit_floor", *_FACES, "tile", "tile_overlap"), "export": ("edit_floor",),
          "model.generator": ("work_size", "coarse_pass", *_FACES), "train": ("strength",)}
RENAMED = {f"{group}.{field}": f"inference.{field}" for group, fields in _MOVED.items() for field in fields}


def renamed(values: dict[str, Any], label: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """``values`` (one recipe file's, or the command line's; nested, changed in place) with each old key moved to
    its new name, and a note per key; both names at once is a ConfigError. With ``schema`` (a command's
    defaults), only the keys that command had under the old name and knows under the new one move (``export --set
    retouch.tile=...`` stays an unknown option)."""
    for old, new in RENAMED.items():
        if schema is not None and (get(schema, old) is not MISSING or get(schema, new) is MISSING
                                   or get(schema, old.rsplit(".", 1)[0]) is MISSING):
            continue  # the command has no such old key (another command's group stays an unknown option)
        value = pop(values, old)
        if value is MISSING:
            continue
        if get(values, new) is not MISSING:
            raise ConfigError(f"{label} sets both {old} and {new}: {old} is the old name of {new}; keep {new}")
        put(values, new, value)
        console.print(f"[yellow]note[/] {label}: {old} is now {new} (options/inference.yaml); the old name still "
                      "works")
    return values
