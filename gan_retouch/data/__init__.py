"""Paired datasets (folders, aligned A|B, the synthetic benchmark as a dataset) and paired augmentation.

The names below load their module on first use (PEP 562), so that importing one module of the package (say
``data.io`` for a one-shot `retouch`) does not import the datasets, the synthesizer (``gan_retouch.synth``) and torchvision with it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AugmentOptions": "augment", "augment_item": "augment",
    "SYNTHETIC_STREAM_LENGTH": "datasets", "build_dataset": "datasets",
    "read_image": "io", "read_image_with_info": "io", "read_mask": "io",
    "build_loader": "loader",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
