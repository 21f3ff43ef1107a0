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
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gan_retouch.builtin.store import canonical, is_builtin
from gan_retouch.config import check_unused_inference
from gan_retouch.console import console
from gan_retouch.deploy.export_check import check_parity, example_inputs, load_runner, parity_table
from gan_retouch.errors import ConfigError, GanRetouchError
from gan_retouch.fileio import ensure_writable_dir, staged_path
from gan_retouch.inference.plan import InferencePlan
from gan_retouch.inference.work_size import COARSE_FLOOR
from gan_retouch.nets.base import run_generator, unwrap
from gan_retouch.registry import choice
from gan_retouch.runtime import quiet_cuda_toolkit_probe, resolve_device

FORMATS = {"onnx": ".onnx", "torchscript": ".ts"}
EXPORT_EXTRA_HINT = 'pip install "gan-retouch[export]"'


class ExportWrapper(nn.Module):
    """The generator as an exported graph: float32 images in [0, 1] in and out, any batch, height and width.

    Pads to the generator's stride (replicate, like ``Generator.forward``), runs it in ``dtype`` with the edit
    floor ``floor`` built in (None = the generator's own) and crops back. Inputs: ``image`` (and ``mask`` for
    mask-guided networks); outputs: ``retouched`` (and ``mask_logits`` for multi-task networks).
    """

    def __init__(self, generator: nn.Module, dtype: torch.dtype = torch.float32, floor: float | None = None) -> None:
        super().__init__()
        self.generator = generator
        self.stride = int(getattr(unwrap(generator), "stride", 1))
        self.dtype = dtype
        self.floor = floor

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2], x.shape[-1]
        padding = (0, (-width) % self.stride, 0, (-height) % self.stride)
        return F.pad(x.to(self.dtype), padding, mode="replicate")

    def forward(self, image: torch.Tensor, mask: torch.Tensor | None = None):
        height, width = image.shape[-2], image.shape[-1]
        padded_mask = self._pad(mask) if mask is not None else None
        rgb, mask_logits = run_generator(self.generator, self._pad(image), padded_mask, self.floor)
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


def export_path(options: dict[str, Any], checkpoint_path: str) -> Path:
    """``export.out``, or the checkpoint's path with the format's suffix (``-floorF`` added for another edit
    floor, ``-fp16`` for half). Only a plain export takes ``best.onnx``, the name ``retouch`` looks for next to
    ``best.pt``, so that it never runs a floor other than the checkpoint's without being told. A built-in name
    writes ``builtin-<role>`` in the working folder."""
    export = options["export"]
    if export["out"]:
        return Path(export["out"])
    # a built-in model's export goes to the working folder (builtin-student.onnx), never into the package
    builtin = is_builtin(checkpoint_path)
    source = Path(canonical(checkpoint_path, "student").replace(":", "-") if builtin else checkpoint_path)
    stem = source.stem
    floor = options["inference"]["edit_floor"]
    if floor is not None:
        stem += f"-floor{floor:g}"
    if export["fp16"]:
        stem += "-fp16"
    return source.with_name(stem + FORMATS[export["format"]])


def check_output(path: Path, checkpoint: Path, overwrite: bool) -> None:
    """A ConfigError before any work when the export would replace the checkpoint it reads (never allowed) or
    an existing file without ``export.overwrite``."""
    sources = [checkpoint / "best.pt", checkpoint / "latest.pt"] if checkpoint.is_dir() else [checkpoint]
    if path.exists() and any(source.exists() and path.samefile(source) for source in sources):
        raise ConfigError(f"export.out {path} is the checkpoint being exported; nothing was written. Give --out "
                          "another file name (e.g. the same stem with .onnx or .ts)")
    if path.is_dir():
        raise ConfigError(f"export.out {path} is a folder; give a file name, e.g. --out {path / 'model.onnx'}")
    if path.exists() and not overwrite:
        raise ConfigError(f"export.out {path} already exists; nothing was written. Choose another --out, or add "
                          "--overwrite to replace it")


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
                 device: torch.device | None = None, floor: float | None = None,
                 overwrite: bool = True) -> list[dict[str, Any]]:
    """Export ``generator`` to ``path`` (onnx | torchscript) with the edit floor ``floor`` built in (None = its
    own), check it, and return the parity results.

    The file appears at ``path`` only when the check passes (or is off); otherwise a GanRetouchError says by
    how much it failed and nothing is left behind (``fileio.staged_path``: a temp file renamed at the end). An
    unwritable folder is an OutputError before the export starts. ``overwrite=False`` refuses to replace a file
    that exists when the export ends (another process may have written it meanwhile).
    """
    choice(fmt, tuple(FORMATS), "export.format")
    check_onnxruntime(fmt, check)
    device = device or torch.device("cpu")
    reference = generator.to(device).eval()
    dtype = torch.float16 if fp16 else torch.float32
    exported = ExportWrapper(copy.deepcopy(reference).to(dtype), dtype, floor).eval()
    stride = exported.stride
    side = max(stride, 64 // stride * stride)
    example = example_inputs(reference, 1, side, side, device)
    results: list[dict[str, Any]] = []
    with staged_path(path, keep_suffix=True, replace=overwrite) as temp, quiet_cuda_toolkit_probe():
        if fmt == "onnx":
            export_onnx(exported, example, temp, opset)
        else:
            export_torchscript(exported, example, temp)
        if check:
            runner = load_runner(temp, fmt, device)
            results = check_parity(reference, runner, check_sizes or [[1, 64, 64], [1, 67, 45]], seed, device, floor)
            worst = max(r["max_abs_diff"] for r in results)
            if worst > tolerance:
                per_input = ", ".join(f"{r['input']} {r['shape']}: {r['max_abs_diff']:.3g}" for r in results)
                raise GanRetouchError(
                    f"{fmt} export parity check failed: max abs difference {worst:.3g} > tolerance {tolerance:g} "
                    f"(per input: {per_input}). Nothing was written to {path}. Raise export.tolerance "
                    "(or export.tolerance_fp16) if this precision is acceptable."
                )
    return results


def run_export(options: dict[str, Any]) -> int:
    """Entry point of ``gan-retouch export``: load, resolve the plan, export with its floor, check, report."""
    from gan_retouch.engine.load import load_model

    export = options["export"]
    if not export["checkpoint"]:
        raise ConfigError("export needs a checkpoint: gan-retouch export --checkpoint CKPT --format onnx")
    fmt = export["format"]  # one of FORMATS: options/export.yaml declares them, the loader checks
    check_onnxruntime(fmt, export["check"])
    device = resolve_device(options["device"])
    path = export_path(options, export["checkpoint"])
    check_output(path, Path(export["checkpoint"]), bool(export["overwrite"]))
    ensure_writable_dir(path.parent, "export output folder")  # before loading and exporting, not after
    check_unused_inference(options, "export", ("edit_floor",), "an export is the network with its floor built in; "
                           "retouch applies the rest of the plan")
    loaded = load_model(export["checkpoint"], {"edit_floor": options["inference"]["edit_floor"],
                                               "use_ema": export["use_ema"]}, "inference")
    generator, plan = loaded.network, loaded.plan
    tolerance = export["tolerance_fp16"] if export["fp16"] else export["tolerance"]
    try:
        results = export_model(generator, fmt, path, fp16=export["fp16"], opset=export["opset"],
                               check=export["check"], tolerance=tolerance, check_sizes=export["check_sizes"],
                               seed=options["seed"], device=device, floor=plan.edit_floor,
                               overwrite=bool(export["overwrite"]))
    except FileExistsError as exc:
        raise ConfigError(f"{path} appeared while exporting (another process wrote it); it was kept and this export "
                          "was not written. Add --overwrite to replace it") from exc
    if results:
        console.print(parity_table(results, tolerance))
    else:
        console.print("[yellow]parity check skipped (export.check=false)[/]")
    precision = "fp16" if export["fp16"] else "fp32"
    size_mb = path.stat().st_size / 1e6
    console.print(f"[green]wrote[/] {path} ({fmt}, {precision}, {size_mb:.2f} MB; "
                  f"inputs {io_names(generator)[0]}, dynamic batch/height/width)")
    for line in plan_notes(plan, bool(getattr(generator, "edit_mask", False))):
        console.print(line)
    return 0


def plan_notes(plan: InferencePlan, edit_map: bool) -> list[str]:
    """What of the inference plan the exported file holds, and what it cannot."""
    notes = [f"built in: the edit floor {plan.edit_floor:g}"] if edit_map else []
    if plan.work_size is not None:
        notes.append(f"not in the file: the working size ({plan.work_size} px). The file runs at the size it is "
                     "given; `gan-retouch retouch` scales larger photos down for it and adds the upscaled edit, do "
                     "the same when you run the file yourself (docs/deploy.md)")
    if plan.strength != 1.0:
        notes.append(f"not in the file: the strength {plan.strength:g} its training chose; `retouch` blends "
                     "input + strength * (output - input), do the same when you run the file yourself")
    if plan.coarse_pass:
        notes.append("not in the file: the coarse pass (a first pass at half size with the floor raised to "
                     f"{COARSE_FLOOR:g}); the file holds one pass at one floor, so `retouch` runs the coarse pass "
                     "with PyTorch")
    return [f"note: {line}" for line in notes]
