"""``inference.precision: auto`` (retouch's default): fp16 on CUDA when this model's fp16 output matches its fp32 output.

Before the run, the network runs once in fp32 and once in fp16 (the torch backend, as the run would) on a
synthetic blemished portrait at ``PROBE_SIDE`` px; fp16 is chosen when the largest difference stays within
``FP16_TOLERANCE`` (two 8-bit levels), else fp32, and the console says which and why. Off CUDA, fp32 (fp16 and
bf16 need CUDA); an onnxruntime backend runs the fp32 export.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from gan_retouch.deploy.backends import PROBE_SIDE, TorchBackend
from gan_retouch.inference.plan import InferencePlan

FP16_TOLERANCE = 2 / 255


def probe_image(device: torch.device) -> torch.Tensor:
    """A synthetic blemished portrait ``[1,3,PROBE_SIDE,PROBE_SIDE]`` (skin, edges and defects, not noise)."""
    from gan_retouch.synth.synthetic import synthesize_pair

    return synthesize_pair(0, PROBE_SIDE, seed=0, split="test")["input"][None].to(device)


def fp16_difference(generator: nn.Module, device: torch.device, floor: float | None) -> float:
    """The largest absolute difference between the model's fp16 and fp32 outputs on the probe image."""
    image = probe_image(device)
    full, half = (TorchBackend(generator, device, precision, device.type == "cuda") for precision in ("fp32", "fp16"))
    return (half(image, floor=floor) - full(image, floor=floor)).abs().max().item()


def auto_precision(generator: nn.Module, plan: InferencePlan, device: torch.device,
                   measure=fp16_difference) -> tuple[InferencePlan, str]:
    """The plan with ``precision: auto`` decided, and one line saying why (empty off CUDA: fp32 goes without
    saying there)."""
    if device.type != "cuda":
        return replace(plan, precision="fp32"), ""
    if plan.backend == "onnxruntime":
        return replace(plan, precision="fp32"), "precision auto: fp32 (the onnxruntime backend runs the fp32 export)"
    difference = measure(generator, device, plan.edit_floor)
    if difference <= FP16_TOLERANCE:
        return replace(plan, precision="fp16"), (f"precision auto: fp16 (its output within {difference:.1e} of fp32 "
                                                 f"on a {PROBE_SIDE}px probe)")
    return replace(plan, precision="fp32"), (f"precision auto: fp32 (in fp16 this model's output moves by "
                                             f"{difference:.1e} > {FP16_TOLERANCE:.1e} on a {PROBE_SIDE}px probe)")
