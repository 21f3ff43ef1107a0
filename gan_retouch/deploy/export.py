"""`gan-retouch export`: a checkpoint -> ONNX or TorchScript, checked against PyTorch before it is kept.

The exported graph is an ``ExportWrapper`` around the generator. The wrapper pads the image to the network's
stride and crops back itself, with sizes taken from the input, and traces the generator on an input that is
already a multiple of the stride. Why: exporters trace one example, so the generator's own
``if padding needed`` branch would be frozen to the example's answer; padding by ``(-size) % stride`` (zero
when not needed) keeps inputs of any height and width working in the exported model.

ONNX uses the ``torch.export`` based exporter (``dynamo=True``, the only one maintained in torch >= 2.9) with
dynamic batch, height and width, opset 18 by default (onnxruntime >= 1.14, TensorRT >= 8.6). TorchScript uses
``torch.jit.trace``; the wrapper's size arithmetic is recorded, so dynamic sizes work there too.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.table import Table
from torch import nn

from gan_retouch.console import console
from gan_retouch.errors import ConfigError, GanRetouchError
from gan_retouch.fileio import ensure_writable_dir, staged_path
from gan_retouch.nets.base import override_edit_floor, run_generator, unwrap
from gan_retouch.nets.work_size import use_coarse_pass, work_size_of
from gan_retouch.registry import choice
from gan_retouch.runtime import resolve_device

FORMATS = {"onnx": ".onnx", "torchscript": ".ts"}
EXPORT_EXTRA_HINT = 'pip install "gan-retouch[export]"'


class ExportWrapper(nn.Module):
    """The generator as an exported graph: float32 images in [0, 1] in and out, any batch, height and width.

    Pads to the generator's stride (replicate, like ``Generator.forward``), runs it in ``dtype`` and crops
    back. Inputs: ``image`` (and ``mask`` for mask-guided networks); outputs: ``retouched`` (and
    ``mask_logits`` for multi-task networks).
    """

    def __init__(self, generator: nn.Module, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.generator = generator
        self.stride = int(getattr(unwrap(generator), "stride", 1))
        self.dtype = dtype

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2], x.shape[-1]
        padding = (0, (-width) % self.stride, 0, (-height) % self.stride)
        return F.pad(x.to(self.dtype), padding, mode="replicate")

    def forward(self, image: torch.Tensor, mask: torch.Tensor | None = None):
        height, width = image.shape[-2], image.shape[-1]
        padded_mask = self._pad(mask) if mask is not None else None
        rgb, mask_logits = run_generator(self.generator, self._pad(image), padded_mask)
        rgb = rgb[..., :height, :width].float()
        if mask_logits is None:
            return rgb
        return rgb, mask_logits[..., :height, :width].float()


def io_names(generator: nn.Module) -> tuple[list[str], list[str]]:
    """Input and output names of the exported graph for this generator."""
    inner = unwrap(generator)
    inputs = ["image", "mask"] if getattr(inner, "takes_mask", False) else ["image"]
    outputs = ["retouched", "mask_logits"] if getattr(inner, "has_mask_head", False) else ["retouched"]
    return inputs, outputs


def example_inputs(generator: nn.Module, batch: int, height: int, width: int, device: torch.device,
                   source: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """``(image,)`` or ``(image, mask)`` for the generator; ``source`` gives the image, else random."""
    image = source if source is not None else torch.rand(batch, 3, height, width, device=device)
    if getattr(unwrap(generator), "takes_mask", False):
        return image, (image.mean(dim=1, keepdim=True) > 0.5).float()
    return (image,)


def export_onnx(wrapper: ExportWrapper, example: tuple[torch.Tensor, ...], path: Path, opset: int) -> None:
    """Write an ONNX file with dynamic batch, height and width (torch.export-based exporter)."""
    for module in ("onnx", "onnxscript"):
        try:
            __import__(module)
        except ImportError as exc:
            raise ConfigError(f"ONNX export needs the {module!r} package: {EXPORT_EXTRA_HINT}") from exc
    inputs, outputs = io_names(wrapper.generator)
    batch, height, width = torch.export.Dim("batch"), torch.export.Dim("height"), torch.export.Dim("width")
    dynamic = {name: {0: batch, 2: height, 3: width} for name in inputs}
    torch.onnx.export(wrapper, example, str(path), dynamo=True, input_names=inputs, output_names=outputs,
                      dynamic_shapes=dynamic, opset_version=opset, external_data=False, verbose=False)


def export_torchscript(wrapper: ExportWrapper, example: tuple[torch.Tensor, ...], path: Path) -> None:
    """Write a traced TorchScript file; the wrapper's size arithmetic is traced, so any size works."""
    with warnings.catch_warnings():
        # the deprecation notice of torch.jit, and the generator's own (now always no-op) padding branch
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        traced = torch.jit.trace(wrapper, example, check_trace=False)
    traced.save(str(path))


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
    from gan_retouch.data.synthetic import MIN_SIZE, synthesize_pair

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


def check_parity(generator: nn.Module, runner, check_sizes: list, seed: int,
                 device: torch.device) -> list[dict[str, Any]]:
    """Max abs difference between the exported model and the float32 PyTorch generator, per input."""
    results = []
    for kind, shape, image in parity_cases(check_sizes, seed):
        inputs = example_inputs(generator, *shape, device, source=image.to(device))
        with torch.inference_mode():
            expected = run_generator(generator, *inputs)
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


def export_path(options: dict[str, Any], checkpoint_path: str) -> Path:
    """``export.out``, or the checkpoint's path with the format's suffix (``-floorF`` added for another edit
    floor, ``-fp16`` for half). Only a plain export takes ``best.onnx``, the name ``retouch`` looks for next to
    ``best.pt``, so that it never runs a floor other than the checkpoint's without being told."""
    export = options["export"]
    if export["out"]:
        return Path(export["out"])
    source = Path(checkpoint_path)
    stem = source.stem
    if export["edit_floor"] is not None:
        stem += f"-floor{export['edit_floor']:g}"
    if export["fp16"]:
        stem += "-fp16"
    return source.with_name(stem + FORMATS[export["format"]])


def check_onnxruntime(fmt: str, check: bool) -> None:
    """The parity check of an ONNX export needs onnxruntime: fail early with the install hint."""
    if fmt != "onnx" or not check:
        return
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"the ONNX parity check needs onnxruntime: {EXPORT_EXTRA_HINT} "
                          "(or skip the check with --set export.check=false)") from exc


def export_model(generator: nn.Module, fmt: str, path: Path, *, fp16: bool = False, opset: int = 18,
                 check: bool = True, tolerance: float = 1e-3, check_sizes: list | None = None, seed: int = 0,
                 device: torch.device | None = None) -> list[dict[str, Any]]:
    """Export ``generator`` to ``path`` (onnx | torchscript), check it, and return the parity results.

    The file appears at ``path`` only when the check passes (or is off); otherwise a GanRetouchError says by
    how much it failed and nothing is left behind (``fileio.staged_path``: a temp file renamed at the end). An
    unwritable folder is an OutputError before the export starts.
    """
    choice(fmt, tuple(FORMATS), "export.format")
    check_onnxruntime(fmt, check)
    device = device or torch.device("cpu")
    reference = generator.to(device).eval()
    dtype = torch.float16 if fp16 else torch.float32
    exported = ExportWrapper(copy.deepcopy(reference).to(dtype), dtype).eval()
    stride = exported.stride
    side = max(stride, 64 // stride * stride)
    example = example_inputs(reference, 1, side, side, device)
    results: list[dict[str, Any]] = []
    with staged_path(path, keep_suffix=True) as temp:
        if fmt == "onnx":
            export_onnx(exported, example, temp, opset)
        else:
            export_torchscript(exported, example, temp)
        if check:
            runner = load_runner(temp, fmt, device)
            results = check_parity(reference, runner, check_sizes or [[1, 64, 64], [1, 67, 45]], seed, device)
            worst = max(r["max_abs_diff"] for r in results)
            if worst > tolerance:
                per_input = ", ".join(f"{r['input']} {r['shape']}: {r['max_abs_diff']:.3g}" for r in results)
                raise GanRetouchError(
                    f"{fmt} export parity check failed: max abs difference {worst:.3g} > tolerance {tolerance:g} "
                    f"(per input: {per_input}). Nothing was written to {path}. Raise export.tolerance "
                    "(or export.tolerance_fp16) if this precision is acceptable."
                )
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


def run_export(options: dict[str, Any]) -> int:
    """Entry point of ``gan-retouch export``: load, export, check, report."""
    from gan_retouch.engine.checkpoint import load_generator

    export = options["export"]
    if not export["checkpoint"]:
        raise ConfigError("export needs a checkpoint: gan-retouch export --checkpoint CKPT --format onnx")
    fmt = choice(export["format"], tuple(FORMATS), "export.format")
    check_onnxruntime(fmt, export["check"])
    device = resolve_device(options["device"])
    path = export_path(options, export["checkpoint"])
    ensure_writable_dir(path.parent, "export output folder")  # before loading and exporting, not after
    generator, info = load_generator(export["checkpoint"], use_ema=export["use_ema"])
    override_edit_floor(generator, export["edit_floor"], "export.edit_floor", str(info.get("path")))
    tolerance = export["tolerance_fp16"] if export["fp16"] else export["tolerance"]
    results = export_model(generator, fmt, path, fp16=export["fp16"], opset=export["opset"],
                           check=export["check"], tolerance=tolerance, check_sizes=export["check_sizes"],
                           seed=options["seed"], device=device)
    if results:
        console.print(parity_table(results, tolerance))
    else:
        console.print("[yellow]parity check skipped (export.check=false)[/]")
    precision = "fp16" if export["fp16"] else "fp32"
    size_mb = path.stat().st_size / 1e6
    console.print(f"[green]wrote[/] {path} ({fmt}, {precision}, {size_mb:.2f} MB; "
                  f"inputs {io_names(generator)[0]}, dynamic batch/height/width)")
    if work_size_of(generator) is not None:
        console.print(f"note: the model works at {work_size_of(generator)} px (model.generator.work_size); the file runs "
                      "at the size it is given. `gan-retouch retouch` scales larger photos down for it and adds the "
                      "upscaled edit; do the same when you run the file yourself (docs/deploy.md)")
    if use_coarse_pass(None, generator, "export"):
        console.print("note: the checkpoint runs a coarse pass (model.generator.coarse_pass), which raises the edit "
                      "map's floor; the file holds one pass, and `retouch` runs the coarse pass with PyTorch")
    return 0
