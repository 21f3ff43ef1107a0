"""Device selection and seeding, decided here and nowhere else."""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterator

import torch

from gan_retouch.errors import ConfigError

PRECISION_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}  # the one name -> dtype map


def precision_dtype(name: str, key: str) -> torch.dtype:
    """``fp32`` | ``fp16`` | ``bf16`` -> the torch dtype; anything else is a ConfigError naming ``key``."""
    if name not in PRECISION_DTYPES:
        raise ConfigError(f"{key} must be one of {', '.join(PRECISION_DTYPES)}; got {name!r}")
    return PRECISION_DTYPES[name]


def resolve_device(spec: str | None = "auto") -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` -> a torch.device; asking for absent CUDA is an error."""
    spec = "auto" if spec in (None, "") else str(spec)
    if spec == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {spec!r} was asked for, but CUDA is not available here (torch {torch.__version__}, "
                "cuda build: " + str(torch.version.cuda) + "). Use --device cpu, or install a CUDA build of "
                "torch on a machine with an NVIDIA GPU."
            )
        index = 0 if spec == "cuda" else spec.split(":", 1)[1]
        if not str(index).isdigit() or int(index) >= torch.cuda.device_count():
            raise ConfigError(
                f"device {spec!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
        return torch.device(f"cuda:{int(index)}")
    raise ConfigError(f"unknown device {spec!r}: use auto, cpu, cuda or cuda:N")


def pci_bus_id(device: torch.device) -> str:
    """The PCI bus id of a CUDA device as NVML spells it (``00000000:3b:00.0``): the one name of a GPU that
    ``CUDA_VISIBLE_DEVICES`` renumbering does not change."""
    props = torch.cuda.get_device_properties(device)
    return f"{props.pci_domain_id:08x}:{props.pci_bus_id:02x}:{props.pci_device_id:02x}.0"


def seed_everything(seed: int) -> None:
    """Seed python and torch (all devices) so that a run is repeatable."""
    random.seed(seed)
    torch.manual_seed(seed)


@contextlib.contextmanager
def quiet_cuda_toolkit_probe() -> Iterator[None]:
    """Import-time parts of torch (``torch.utils.benchmark``, the ONNX exporter) load ``torch.utils.cpp_extension``,
    which logs "No CUDA runtime is found, using CUDA_HOME=..." on a machine with a CUDA toolkit and no usable GPU:
    nothing a user of these commands can act on. Its warnings are silenced while the block runs; errors still show."""
    probe = logging.getLogger("torch.utils.cpp_extension")
    level = probe.level
    probe.setLevel(logging.ERROR)
    try:
        yield
    finally:
        probe.setLevel(level)
