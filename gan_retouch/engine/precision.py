"""Mixed precision, channels_last and torch.compile decisions: off by default on CPU, on for CUDA."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from gan_retouch.errors import ConfigError
from gan_retouch.registry import choice
from gan_retouch.runtime import PRECISION_DTYPES


@dataclass(frozen=True)
class Precision:
    amp_dtype: torch.dtype | None  # None = full fp32
    use_scaler: bool  # fp16 needs a gradient scaler
    channels_last: bool
    compile: bool

    def autocast(self, device: torch.device):
        return torch.autocast(device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None)


def _auto_bool(value: Any, key: str, on_cuda: bool) -> bool:
    if value == "auto":
        return on_cuda
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{key} must be auto, true or false; got {value!r}")


def resolve_precision(train: dict[str, Any], device: torch.device) -> Precision:
    """Read train.amp / channels_last / compile for this device; CUDA-only settings on CPU are errors."""
    on_cuda = device.type == "cuda"
    amp = choice(train["amp"], ("auto", "off", "bf16", "fp16"), "train.amp")
    if amp == "auto":
        amp = "bf16" if on_cuda and torch.cuda.is_bf16_supported() else ("fp16" if on_cuda else "off")
    if amp == "fp16" and not on_cuda:
        raise ConfigError("train.amp=fp16 needs CUDA (fp16 with a grad scaler); on the CPU use train.amp=bf16 or off")
    dtype = None if amp == "off" else PRECISION_DTYPES[amp]
    return Precision(
        amp_dtype=dtype,
        use_scaler=amp == "fp16",
        channels_last=_auto_bool(train["channels_last"], "train.channels_last", on_cuda),
        compile=_auto_bool(train["compile"], "train.compile", on_cuda),
    )
