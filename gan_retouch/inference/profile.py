"""Model statistics, written once: parameters, file size, multiply-accumulates (MACs) and latency.

Used by ``gan-retouch bench``, ``benchmarks/``, the distillation budget checks and the distillation report, so
every figure the project prints comes from here. MACs can be counted for a network alone or for a whole
inference plan (``inference.plan``: the network at its working size, the coarse pass, tiles). Sizes are in MB = 10^6 bytes (the unit of the competition's
"10 MB" budget and of "4.6 M parameters = about 18 MB in fp32").

MACs come from ``torch.utils.flop_counter.FlopCounterMode`` (MACs = FLOPs / 2): every convolution (grouped,
depthwise, transposed), linear layer and matrix product, called as a module or through ``torch.nn.functional``.
Elementwise work (normalisation, activations, residual adds, pooling, interpolation) is not counted: on a CPU
it is memory-bound, which is why MACs alone do not predict latency. The network runs on PyTorch's ``meta``
device, where tensors carry shapes but no data, so a 4K count does no arithmetic and allocates nothing.
Mask-guided generators (``takes_mask``) get a meta mask.

Latency comes from ``torch.utils.benchmark.Timer`` (``blocked_autorange``): its first, block-size-estimating
call is untimed (a warm-up), then calls are timed until ``min_time_s`` seconds have passed (at least one).
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from gan_retouch.errors import ConfigError
from gan_retouch.inference.plan import InferencePlan
from gan_retouch.inference.run import apply_plan
from gan_retouch.nets.base import run_generator
from gan_retouch.runtime import quiet_cuda_toolkit_probe

BYTES_PER_MB = 1_000_000


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not, shared ones counted once)."""
    return sum(p.numel() for p in model.parameters())


def model_size_mb(model: nn.Module, dtype: torch.dtype = torch.float32) -> float:
    """Size in MB (10^6 bytes) of the model's state dict with floating-point tensors stored as ``dtype``.

    Non-floating buffers (e.g. BatchNorm's ``num_batches_tracked``) keep their own element size.
    """
    if not dtype.is_floating_point:
        raise ConfigError(f"model_size_mb needs a floating-point dtype (e.g. torch.float16), got {dtype}")
    element = torch.empty((), dtype=dtype).element_size()
    total = 0
    for tensor in model.state_dict().values():
        size = element if tensor.is_floating_point() else tensor.element_size()
        total += tensor.numel() * size
    return total / BYTES_PER_MB


def count_macs(model: nn.Module, size: tuple[int, ...] = (1, 3, 1024, 1024),
               plan: InferencePlan | None = None) -> int:
    """Multiply-accumulates of one forward pass on an input of shape ``size`` (FLOPs / 2 of FlopCounterMode);
    with ``plan``, of the whole plan on an image of that shape (the network at the working size, the coarse
    pass, tiles with their overlap).

    The model runs through ``torch.func.functional_call`` with meta stand-ins for its parameters and buffers,
    so its weights are neither copied nor touched and no real computation happens.
    """
    from torch.func import functional_call
    from torch.utils.flop_counter import FlopCounterMode

    if len(size) < 2 or any(int(s) <= 0 for s in size):
        raise ConfigError(f"count_macs needs a positive input shape like (1, 3, 1024, 1024), got {tuple(size)}")
    shape = tuple(int(s) for s in size)
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    stand_ins = {name: torch.empty_like(tensor, device="meta") for name, tensor in tensors.items()}
    takes_mask = getattr(model, "takes_mask", False) and len(shape) == 4
    image = torch.empty(shape, device="meta")
    mask = torch.empty((shape[0], 1, *shape[2:]), device="meta") if takes_mask else None

    def call(x: torch.Tensor, m: torch.Tensor | None, floor: float | None = None) -> torch.Tensor:
        args = (x, m) if takes_mask else (x,)
        return functional_call(model, stand_ins, args, {} if floor is None else {"floor": floor})

    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            if plan is None:
                call(image, mask)
            else:
                tile = plan.tile or 0  # auto tiling depends on the machine: counted whole
                apply_plan(plan, lambda x, m, f: _rgb(call(x, m, f)), image, mask, tile, getattr(model, "stride", 1))
    except (RuntimeError, NotImplementedError, TypeError) as exc:
        raise ConfigError(f"cannot count MACs of {type(model).__name__} at input {shape}: its forward does not "
                          f"run on the meta device ({exc})") from exc
    return counter.get_total_flops() // 2


def _rgb(output: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


def model_figures(model: nn.Module, size: int = 1024) -> dict[str, Any]:
    """The size figures of ``model``, written once: ``params``, ``mb_fp32``, ``mb_fp16`` and ``gmacs`` (batch 1,
    ``size`` x ``size``), with ``size``."""
    return {
        "params": count_parameters(model),
        "mb_fp32": model_size_mb(model, torch.float32),
        "mb_fp16": model_size_mb(model, torch.float16),
        "gmacs": count_macs(model, (1, 3, size, size)) / 1e9,
        "size": size,
    }


def measure_latency(run: Callable[[], Any], min_time_s: float = 1.0, warmup: int = 0) -> dict[str, float]:
    """Milliseconds per call of ``run``: ``median``, ``p90``, ``min`` and the number of timed ``runs``.

    ``warmup`` extra untimed calls come first (for torch.compile or CUDA graphs); the Timer then makes one
    untimed call of its own and times calls until ``min_time_s`` seconds have passed (CUDA is synchronised).
    """
    with quiet_cuda_toolkit_probe():
        from torch.utils.benchmark import Timer

    if not min_time_s > 0:
        raise ConfigError(f"the latency measurement time must be > 0 seconds, got {min_time_s!r}")
    for _ in range(max(0, int(warmup))):
        run()
    timer = Timer(stmt="run()", globals={"run": run}, num_threads=torch.get_num_threads())
    measurement = timer.blocked_autorange(min_run_time=float(min_time_s))
    times = [t * 1000.0 for t in measurement.times]
    p90 = statistics.quantiles(times, n=10, method="inclusive")[8] if len(times) > 1 else times[0]
    return {"median": statistics.median(times), "p90": p90, "min": min(times), "runs": len(times)}


def inference_copy(model: nn.Module, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                   channels_last: bool = False) -> nn.Module:
    """An eval-mode copy of ``model`` on ``device`` at ``dtype``, BatchNorm folded where the model offers
    ``fuse()``, in channels_last memory format when asked: the network the inference paths run."""
    inner = copy.deepcopy(model).to(device=device, dtype=dtype).eval()
    if callable(getattr(inner, "fuse", None)):
        inner.fuse()
    if channels_last:
        inner = inner.to(memory_format=torch.channels_last)
    return inner


def stand_in_mask(image: torch.Tensor, takes_mask: bool) -> torch.Tensor | None:
    """A defect mask for timing and parity runs of a mask-guided network on ``image``; None for the others."""
    return (image[:, :1] > 0.5).float() if takes_mask else None


def model_latency(model: nn.Module, size: int = 1024, min_time_s: float = 1.0, channels_last: bool = False,
                  device: torch.device | str = "cpu") -> dict[str, float]:
    """Latency (ms, see ``measure_latency``) of one fp32 ``size`` x ``size`` image through the inference copy of
    ``model`` (fused, eval, optionally channels_last) on ``device``; the model itself is left untouched."""
    inner = inference_copy(model, device, torch.float32, channels_last)
    image = torch.rand(1, 3, size, size, device=device)
    if channels_last:
        image = image.contiguous(memory_format=torch.channels_last)
    mask = stand_in_mask(image, getattr(inner, "takes_mask", False))
    with torch.inference_mode():
        return measure_latency(lambda: run_generator(inner, image, mask), min_time_s)


__all__ = ["BYTES_PER_MB", "count_macs", "count_parameters", "inference_copy", "measure_latency",
           "model_figures", "model_latency", "model_size_mb", "stand_in_mask"]
