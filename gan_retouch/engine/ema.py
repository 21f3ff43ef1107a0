"""The generator's exponential moving average (``train.ema``), updated without a host-device sync.

torch's ``AveragedModel`` keeps its update counter ``n_averaged`` on the CPU, reads it (``bool(n == 0)``) and
moves it to the GPU (``.to(device)``) at every update: a copy from pageable memory that waits for the CUDA stream,
so every training step stalled there. The EMA update ignores the counter, so here it is a Python number, mirrored
into the ``n_averaged`` buffer (CPU, for checkpoints: the state dict stays the one ``AveragedModel`` writes).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class GeneratorEMA(AveragedModel):
    """EMA of a generator's parameters and buffers (``decay`` in [0, 1)); the first update copies them."""

    def __init__(self, generator: nn.Module, decay: float) -> None:
        super().__init__(generator, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        self.updates = 0

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        """One EMA step toward ``model``: queued on the device, never waited for."""
        groups: dict[tuple[torch.device, torch.dtype], tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
        averaged = [*self.module.parameters(), *self.module.buffers()]
        current = [*model.parameters(), *model.buffers()]
        for mine, theirs in zip(averaged, current, strict=True):
            pair = groups.setdefault((mine.device, mine.dtype), ([], []))
            pair[0].append(mine.detach())
            pair[1].append(theirs.detach())
        for mine, theirs in groups.values():
            if self.updates == 0:
                torch._foreach_copy_(mine, theirs)
            else:
                self.multi_avg_fn(mine, theirs, self.updates)
        self.updates += 1
        self.n_averaged += 1  # a CPU tensor: no device work

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """Load as ``AveragedModel`` does, and take the saved counter (read once, here)."""
        result = super().load_state_dict(state_dict, strict, assign)
        self.updates = int(self.n_averaged)
        return result
