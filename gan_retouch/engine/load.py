"""The one front door from a checkpoint to a runnable model: ``load_model(checkpoint, settings, key, device)``.

Every command that runs a trained model (``retouch``, ``test``, ``bench``, ``export``) and the benchmark scripts
load it here: the generator rebuilt from the checkpoint alone (``engine.checkpoint.load_generator``: weights only,
EMA weights when ``settings["use_ema"]`` is true or absent), and its inference plan: the checkpoint's saved plan
with the command's option group ``settings`` applied and checked against the network and the device
(``inference.plan.plan_for``). It lives in ``engine`` because reading checkpoints is the engine's job;
``inference`` stays below it and knows nothing of files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gan_retouch.engine.checkpoint import load_generator
from gan_retouch.inference.plan import InferencePlan, plan_for


@dataclass(frozen=True)
class LoadedModel:
    """A generator ready to run: the network (eval mode, on the CPU), the plan it runs under, and the
    checkpoint's other entries (``options``, ``step``, ``generator`` name and args, ``path``, ``used_ema``, and
    ``plan``: the plan as saved)."""

    network: nn.Module
    plan: InferencePlan
    info: dict[str, Any]

    @property
    def source(self) -> str:
        """The checkpoint file the model came from."""
        return str(self.info.get("path"))


def load_model(checkpoint: str | Path, settings: Mapping[str, Any], key: str,
               device: torch.device | None = None) -> LoadedModel:
    """The model saved in ``checkpoint`` under its plan with ``settings`` (the option group named ``key``, e.g.
    ``retouch``) applied; ``device`` is where it will run (a half-precision plan needs CUDA)."""
    network, info = load_generator(checkpoint, use_ema=bool(settings.get("use_ema", True)))
    device_type = device.type if device is not None else "cpu"
    plan = plan_for(network, info["plan"], settings, key, device_type, str(info.get("path", checkpoint)))
    return LoadedModel(network, plan, info)
