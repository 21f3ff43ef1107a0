"""Paired datasets (folders, aligned A|B), paired augmentation, and the built-in synthetic benchmark.

The names below load their module on first use (PEP 562), so that importing one module of the package (say
``data.io`` for a one-shot `retouch`) does not import the datasets, the synthesizer and torchvision with it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AugmentOptions": "augment", "augment_item": "augment",
    "SYNTHETIC_STREAM_LENGTH": "datasets", "build_dataset": "datasets",
    "SynthOptions": "family",
    "read_image": "io", "read_image_with_info": "io", "read_mask": "io",
    "build_loader": "loader",
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
