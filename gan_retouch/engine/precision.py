"""Mixed precision, channels_last and torch.compile decisions: off by default on CPU, on for CUDA."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from gan_retouch.console import console
from gan_retouch.errors import ConfigError
from gan_retouch.runtime import PRECISION_DTYPES

BF16_MIN_CAPABILITY = (8, 0)  # Ampere: native bf16. Older cards (V100 sm_70, T4 sm_75) only emulate it, slowly


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


def has_native_bf16(device: torch.device) -> bool:
    """Whether ``device`` (the run's device, not the current one) computes bf16 natively: compute capability
    >= 8.0. ``torch.cuda.is_bf16_supported()`` also counts emulation, which is slow on V100 and T4."""
    return device.type == "cuda" and tuple(torch.cuda.get_device_capability(device)) >= BF16_MIN_CAPABILITY


def auto_amp(device: torch.device) -> str:
    """``train.amp=auto``: bf16 on cards with native bf16, fp16 (with a grad scaler) on older CUDA cards, off on CPU."""
    if device.type != "cuda":
        return "off"
    return "bf16" if has_native_bf16(device) else "fp16"


def resolve_precision(train: dict[str, Any], device: torch.device) -> Precision:
    """Read train.amp / channels_last / compile for this device; CUDA-only settings on CPU are errors."""
    on_cuda = device.type == "cuda"
    amp = train["amp"]  # auto | off | bf16 | fp16, checked when options load
    if amp == "auto":
        amp = auto_amp(device)
    elif amp == "bf16" and on_cuda and not has_native_bf16(device):
        major, minor = torch.cuda.get_device_capability(device)
        console.print(f"[yellow]train.amp=bf16 on {device} (compute capability {major}.{minor}): bf16 is emulated "
                      "there and slow; train.amp=fp16 or auto is faster[/]")
    if amp == "fp16" and not on_cuda:
        raise ConfigError("train.amp=fp16 needs CUDA (fp16 with a grad scaler); on the CPU use train.amp=bf16 or off")
    dtype = None if amp == "off" else PRECISION_DTYPES[amp]
    return Precision(
        amp_dtype=dtype,
        use_scaler=amp == "fp16",
        channels_last=_auto_bool(train["channels_last"], "train.channels_last", on_cuda),
        compile=_auto_bool(train["compile"], "train.compile", on_cuda),
    )
