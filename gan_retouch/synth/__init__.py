"""The synthetic renderer: procedural portraits with known defects, and rendered blemishes on real photos.

It draws images and masks only; reading and writing files is the job of ``gan_retouch.data`` and the commands.
The names below load their module on first use (PEP 562), so that importing one module does not import them all.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SynthOptions": "family",
    "blemish_photo": "photos", "face_skin": "photos",
    "detect_skin": "skin",
    "synthesize_pair": "synthetic",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
