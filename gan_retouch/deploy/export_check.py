"""The parity check of `gan-retouch export`: run the exported file and compare it with PyTorch.

Each check size is run twice, on a random image and on a synthetic blemished portrait (the built-in benchmark),
through the exported file (onnxruntime or ``torch.jit.load``) and through the float32 PyTorch generator at the
same edit floor; the largest absolute difference per input is reported.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from rich.table import Table
from torch import nn

from gan_retouch.errors import ConfigError, GanRetouchError
from gan_retouch.nets.base import run_generator, unwrap


def example_inputs(generator: nn.Module, batch: int, height: int, width: int, device: torch.device,
                   source: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """``(image,)`` or ``(image, mask)`` for the generator; ``source`` gives the image, else random."""
    image = source if source is not None else torch.rand(batch, 3, height, width, device=device)
    if getattr(unwrap(generator), "takes_mask", False):
        return image, (image.mean(dim=1, keepdim=True) > 0.5).float()
    return (image,)


def load_runner(path: Path, fmt: str, device: torch.device):
    """A callable ``inputs -> list of float32 CPU tensors`` that runs an exported file."""
    if fmt == "onnx":
        import onnxruntime

        providers = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        session = onnxruntime.InferenceSession(str(path), providers=providers)
        names = [node.name for node in session.get_inputs()]

        def run_onnx(inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
            feed = {name: tensor.detach().cpu().numpy() for name, tensor in zip(names, inputs, strict=True)}
            return [torch.from_numpy(out) for out in session.run(None, feed)]

        return run_onnx
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        module = torch.jit.load(str(path), map_location=device)

    def run_torchscript(inputs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        with torch.inference_mode():
            result = module(*inputs)
        outputs = result if isinstance(result, tuple) else (result,)
        return [out.float().cpu() for out in outputs]

    return run_torchscript


def synthetic_batch(batch: int, height: int, width: int, seed: int) -> torch.Tensor:
    """Synthetic blemished portraits (the built-in benchmark) cropped to ``height`` x ``width``."""
    from gan_retouch.synth.synthetic import MIN_SIZE, synthesize_pair

    side = max(height, width, MIN_SIZE)
    images = [synthesize_pair(i, side, seed=seed, split="test")["input"][:, :height, :width] for i in range(batch)]
    return torch.stack(images)


def parity_cases(check_sizes: list, seed: int) -> Iterator[tuple[str, tuple[int, int, int], torch.Tensor]]:
    """``(kind, (batch, height, width), image)`` for each check size: a random and a synthetic input."""
    generator = torch.Generator().manual_seed(seed)
    for entry in check_sizes:
        if (not isinstance(entry, (list, tuple)) or len(entry) != 3
                or not all(isinstance(v, int) and v > 0 for v in entry)):
            raise ConfigError(f"export.check_sizes entries must be [batch, height, width] positive integers, "
                              f"got {entry!r}")
        batch, height, width = entry
        yield "random", (batch, height, width), torch.rand(batch, 3, height, width, generator=generator)
        yield "synthetic", (batch, height, width), synthetic_batch(batch, height, width, seed)


def check_parity(generator: nn.Module, runner, check_sizes: list, seed: int, device: torch.device,
                 floor: float | None = None) -> list[dict[str, Any]]:
    """Max abs difference between the exported model and the float32 PyTorch generator (at ``floor``), per input."""
    results = []
    for kind, shape, image in parity_cases(check_sizes, seed):
        inputs = example_inputs(generator, *shape, device, source=image.to(device))
        with torch.inference_mode():
            expected = run_generator(generator, inputs[0], inputs[1] if len(inputs) > 1 else None, floor)
        got = runner(inputs)
        expected = [t for t in expected if t is not None]
        if len(got) != len(expected):
            raise GanRetouchError(f"the exported model returns {len(got)} outputs, PyTorch {len(expected)}")
        diff = 0.0
        for out, ref in zip(got, expected, strict=True):
            if out.shape != ref.shape:
                raise GanRetouchError(f"the exported model returns shape {tuple(out.shape)} for input "
                                      f"{shape}, PyTorch {tuple(ref.shape)}")
            diff = max(diff, (out - ref.float().cpu()).abs().max().item())
        results.append({"input": kind, "shape": list(shape), "max_abs_diff": diff})
    return results


def parity_table(results: list[dict[str, Any]], tolerance: float) -> Table:
    """The parity results as a rich table."""
    table = Table(title=f"parity with PyTorch (tolerance {tolerance:g})", title_justify="left")
    table.add_column("input")
    table.add_column("batch x height x width")
    table.add_column("max abs diff", justify="right")
    for r in results:
        table.add_row(r["input"], " x ".join(map(str, r["shape"])), f"{r['max_abs_diff']:.2e}")
    return table
