"""The settings that define a synthetic family (``data.synthetic``): which defects, faces, backgrounds, camera.

A benchmark trains on one family and scores on others by changing these settings (e.g. ``defects: [acne]`` for
training and ``defects: [dark_spot, lines]`` for testing). Every value is checked here with a one-line error.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from gan_retouch.errors import ConfigError
from gan_retouch.values import is_integer, is_number

DEFECT_KINDS = ("acne", "pustule", "post_acne", "dark_spot", "redness", "blotch", "pores", "lines", "under_eye",
                "mottle")
# The default family leaves out ``blotch`` and ``mottle`` (the built-in face model's uneven tone, recipe faces): trained with it, the quick-start teacher removed more of large
# discolourations but edited clean skin and clean photos more (docs/history.md, docs/results.md).
DEFAULT_DEFECTS = tuple(kind for kind in DEFECT_KINDS if kind not in ("blotch", "mottle"))
BACKGROUND_KINDS = ("plain", "gradient", "blotchy", "pattern", "bokeh", "skin")
MODES = ("standard", "subtle")
RANGES = {  # key -> (low, high) valid bounds of each element of a [min, max] setting
    "defect_count": (0, 200), "defect_strength": (0.0, 1.0), "defect_scale": (0.1, 10.0),
    "skin_tone": (0.0, 1.0), "face_scale": (0.3, 3.0),
}
PROBABILITIES = ("clean_fraction", "hair", "glasses", "stubble")


@dataclass(frozen=True)
class SynthOptions:
    """One synthetic family. Ranges are inclusive ``(min, max)``; probabilities are in [0, 1]."""

    mode: str = "standard"
    defects: tuple[str, ...] = DEFAULT_DEFECTS
    defect_count: tuple[int, int] = (4, 20)
    defect_strength: tuple[float, float] = (0.4, 1.0)
    defect_scale: tuple[float, float] = (0.6, 1.6)
    clean_fraction: float = 0.1
    freckles_are_defects: bool = False
    lookalikes: bool = True
    skin_tone: tuple[float, float] = (0.0, 1.0)
    face_scale: tuple[float, float] = (0.8, 2.0)
    hair: float = 0.9
    glasses: float = 0.2
    stubble: float = 0.15
    backgrounds: tuple[str, ...] = BACKGROUND_KINDS
    camera: bool = True

    @classmethod
    def from_mapping(cls, values: dict[str, Any], prefix: str = "data.synthetic") -> SynthOptions:
        """Build from ``data.synthetic`` (keys such as ``size`` or ``seed`` are ignored); checks every value."""
        known = {field.name for field in fields(cls)}
        settings: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                continue
            where = f"{prefix}.{key}"
            if key == "mode":
                settings[key] = _one_of(value, MODES, where)
            elif key in ("defects", "backgrounds"):
                valid = DEFECT_KINDS if key == "defects" else BACKGROUND_KINDS
                if not isinstance(value, (list, tuple)):
                    raise ConfigError(f"{where} must be a list of {', '.join(valid)}, got {value!r}")
                settings[key] = tuple(_one_of(item, valid, where) for item in value)
            elif key in RANGES:
                settings[key] = _min_max(value, RANGES[key], key == "defect_count", where)
            elif key in PROBABILITIES:
                if not is_number(value) or not 0.0 <= value <= 1.0:
                    raise ConfigError(f"{where} must be a probability in [0, 1], got {value!r}")
                settings[key] = float(value)
            else:
                if not isinstance(value, bool):
                    raise ConfigError(f"{where} must be true or false, got {value!r}")
                settings[key] = value
        options = cls(**settings)
        if not options.backgrounds:
            raise ConfigError(f"{prefix}.backgrounds is empty: list at least one of {', '.join(BACKGROUND_KINDS)}")
        return options


def _one_of(value: Any, valid: tuple[str, ...], where: str) -> str:
    if value not in valid:
        raise ConfigError(f"{where}: unknown value {value!r}; valid: {', '.join(valid)}")
    return value


def _min_max(value: Any, bounds: tuple[float, float], integer: bool, where: str) -> tuple:
    valid = is_integer if integer else is_number
    if (
        not isinstance(value, (list, tuple)) or len(value) != 2
        or not all(valid(v) for v in value)
        or not bounds[0] <= value[0] <= value[1] <= bounds[1]
    ):
        raise ConfigError(f"{where} must be [min, max] with {bounds[0]:g} <= min <= max <= {bounds[1]:g}, got {value!r}")
    return (int(value[0]), int(value[1])) if integer else (float(value[0]), float(value[1]))
