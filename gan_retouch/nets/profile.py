"""Model statistics: parameter count, file size and multiply-accumulates (MACs) of a network.

Used by ``gan-retouch bench``, the distillation budget checks and reports. Sizes are in MB = 10^6 bytes
(the unit of the competition's "10 MB" budget and of "4.6 M parameters = about 18 MB in fp32").

``count_macs`` is a forward-hook counter. It counts the multiply-accumulates of convolutions (any
dimensionality, grouped and depthwise included), transposed convolutions and linear layers, each called as a
module. It does not count bias additions, normalisation, activations, elementwise arithmetic (residual adds,
the student's ``(1 + a) * x + b`` head), pooling, padding, interpolation, nor convolutions called through
``torch.nn.functional`` directly. The network runs on PyTorch's ``meta`` device, where tensors carry shapes but
no data, so a 1024x1024 count needs no arithmetic and equals the count of a real run. (The first meta run of
a process pays a one-time set-up of a few seconds inside torch; later counts take well under a second.)
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call

from gan_retouch.errors import ConfigError

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


def _layer_macs(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    """Multiply-accumulates of one call of a counted layer, from its input and output shapes."""
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        # every input element is multiplied into (out_channels / groups) * kernel outputs
        per_input = module.out_channels // module.groups * math.prod(module.kernel_size)
        return inputs[0].numel() * per_input
    if isinstance(module, nn.modules.conv._ConvNd):
        # every output element sums (in_channels / groups) * kernel products
        per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
        return output.numel() * per_output
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


COUNTED_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)


def count_macs(model: nn.Module, size: tuple[int, ...] = (1, 3, 1024, 1024)) -> int:
    """Multiply-accumulates of one forward pass on an input of shape ``size`` (conv, transposed conv, linear).

    The model runs through ``torch.func.functional_call`` with meta stand-ins for its parameters and buffers,
    so its weights are neither copied nor touched and no real computation happens. See the module docstring
    for what is not counted.
    """
    if len(size) < 2 or any(int(s) <= 0 for s in size):
        raise ConfigError(f"count_macs needs a positive input shape like (1, 3, 1024, 1024), got {tuple(size)}")
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    stand_ins = {name: torch.empty_like(tensor, device="meta") for name, tensor in tensors.items()}
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += _layer_macs(module, inputs, output)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, COUNTED_LAYERS)]
    try:
        with torch.no_grad():
            functional_call(model, stand_ins, (torch.empty(tuple(int(s) for s in size), device="meta"),))
    except (RuntimeError, NotImplementedError) as exc:
        raise ConfigError(f"cannot count MACs of {type(model).__name__} at input {tuple(size)}: its forward "
                          f"does not run on the meta device ({exc})") from exc
    finally:
        for handle in handles:
            handle.remove()
    return total


__all__ = ["BYTES_PER_MB", "count_macs", "count_parameters", "model_size_mb"]
