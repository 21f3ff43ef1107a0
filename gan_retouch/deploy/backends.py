"""Inference backends for `retouch` and `bench`: PyTorch (fused, in the faster memory format) or ONNX Runtime.

``select_backend`` returns a ``Backend`` for a model and its resolved inference plan (``inference.plan``): a
module with ``forward(images, mask=None, floor=None)`` (float32 [0, 1] in and out, any size, so
``inference.run.run_plan`` can run it at a working size and over tiles) and a one-line description.

- ``torch``: an eval copy with BatchNorm folded into the convolutions (``fuse()``), at the plan's precision.
  The memory format is channels_last on CUDA; on CPU both formats are candidates (dense convolutions gain from
  channels_last, some networks lose), with torch's CPU thread count.
- ``onnxruntime``: the model's ONNX export (``gan-retouch export``; the file next to the checkpoint when it
  exists, else exported now into a temporary folder) run by ONNX Runtime with the same thread count, after a
  parity check against PyTorch on a small image. Its edit floor is built in: it runs the plan's floor only.
- ``auto``: the candidates above (ONNX Runtime only when it is installed and an export already lies next to the
  checkpoint), timed on a probe image; the fastest is used and remembered per model file and machine
  (``deploy.probe_cache``). ``probe=False`` (one small job, where probing costs more than it saves) takes the
  stored choice when there is one, else PyTorch in channels_last, without timing anything.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import torch
from torch import nn

from gan_retouch.deploy import probe_cache
from gan_retouch.errors import CheckpointError, ConfigError, GanRetouchError
from gan_retouch.inference.plan import InferencePlan
from gan_retouch.inference.profile import inference_copy, measure_latency, stand_in_mask
from gan_retouch.nets.base import run_generator, unwrap
from gan_retouch.runtime import precision_dtype

PROBE_SIDE = 256
PARITY_TOLERANCE = 1e-3
TORCH_LAYOUTS = {"torch-channels_last": True, "torch": False}  # candidate name -> channels_last; the first is
# the default without a probe (dense and depthwise convolutions mostly gain from channels_last on CPU, see above)


class Backend(nn.Module):
    """A network ready for inference, and how it runs (``description``); ``reference`` is the PyTorch module
    behind it (stride, memory estimates)."""

    description: str = ""
    stride: int = 1
    takes_mask: bool = False  # the network also needs a defect mask


class TorchBackend(Backend):
    """The fused PyTorch network; inputs are converted to its memory format and precision."""

    def __init__(self, generator: nn.Module, device: torch.device, precision: str, channels_last: bool) -> None:
        super().__init__()
        self.dtype = precision_dtype(precision, "precision")
        self.network = inference_copy(generator, device, self.dtype, channels_last)
        self.channels_last = channels_last
        self.stride = int(getattr(unwrap(generator), "stride", 1))
        self.takes_mask = bool(getattr(unwrap(generator), "takes_mask", False))
        layout = "channels_last" if channels_last else "contiguous"
        threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
        self.description = f"torch {precision} on {device}, BatchNorm folded, {layout}{threads}"

    @property
    def reference(self) -> nn.Module:
        return self.network

    def forward(self, images: torch.Tensor, mask: torch.Tensor | None = None,
                floor: float | None = None) -> torch.Tensor:
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        x = images.to(self.dtype).contiguous(memory_format=memory_format)
        with torch.inference_mode():
            return run_generator(self.network, x, mask, floor)[0].float()


class OnnxRuntimeBackend(Backend):
    """An ONNX file run by ONNX Runtime (CPU, or CUDA when its provider is installed and the device is CUDA);
    ``floor`` is the edit floor built into the file."""

    def __init__(self, path: Path, device: torch.device, source: str, reference: nn.Module, floor: float) -> None:
        super().__init__()
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...) for a bad file
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise CheckpointError(f"cannot load the ONNX model {path}: {reason} (damaged, or not an ONNX file); "
                                  "export it again with `gan-retouch export`, or use backend torch") from exc
        self.inputs = [node.name for node in self.session.get_inputs()]
        self.takes_mask = "mask" in self.inputs
        self.reference = reference
        self.stride = int(getattr(unwrap(reference), "stride", 1))
        self.floor = floor
        self.device = device
        self.description = (f"onnxruntime {onnxruntime.__version__} ({providers[0]}, "
                            f"{torch.get_num_threads()} threads) from {source}")

    def forward(self, images: torch.Tensor, mask: torch.Tensor | None = None,
                floor: float | None = None) -> torch.Tensor:
        if floor is not None and floor != self.floor:
            raise GanRetouchError(f"this ONNX model has the edit floor {self.floor:g} built in and cannot run at "
                                  f"{floor:g}; use the torch backend")
        feed = {"image": images.float().cpu().numpy()}
        if self.takes_mask:
            if mask is None:
                raise ConfigError("this ONNX model takes a defect mask; run it through the torch backend")
            feed["mask"] = mask.float().cpu().numpy()
        return torch.from_numpy(self.session.run(None, feed)[0]).to(images.device)


def onnxruntime_installed() -> bool:
    """Whether the onnxruntime package is installed (without importing it: that takes a while)."""
    return importlib.util.find_spec("onnxruntime") is not None


def existing_export(checkpoint: str | None) -> Path | None:
    """The ONNX file `gan-retouch export` writes next to ``checkpoint`` by default, when it exists and is newer."""
    if not checkpoint:
        return None
    source = Path(checkpoint)
    candidate = source.with_suffix(".onnx")
    if candidate.is_file() and source.is_file() and candidate.stat().st_mtime >= source.stat().st_mtime:
        return candidate
    return None


def onnx_backend(generator: nn.Module, device: torch.device, floor: float, checkpoint: str | None = None) -> Backend:
    """ONNX Runtime on the existing export of ``checkpoint``, or on a fresh export (with ``floor`` built in) into
    a temporary folder kept while the backend lives, checked against the PyTorch network on a small image."""
    if not onnxruntime_installed():
        raise ConfigError('the onnxruntime backend needs the onnxruntime package: pip install "gan-retouch[export]"'
                          " (or use backend torch)")
    path, folder = existing_export(checkpoint), None
    if path is None:
        from gan_retouch.deploy.export import export_model

        folder = tempfile.TemporaryDirectory(prefix="gan-retouch-onnx-")
        path = Path(folder.name) / "model.onnx"
        export_model(generator, "onnx", path, check=False, floor=floor)
    source = str(path) if folder is None else "an export made for this run"
    backend = OnnxRuntimeBackend(path, device, source, generator, floor)
    backend.folder = folder
    difference = parity(backend, generator, device, floor)
    if difference > PARITY_TOLERANCE:
        raise GanRetouchError(f"the ONNX model {path} differs from the checkpoint by {difference:.3g} "
                              f"(> {PARITY_TOLERANCE:g}); export it again, or use backend torch")
    backend.description += f", parity with torch {difference:.1e}"
    return backend


def parity(backend: Backend, generator: nn.Module, device: torch.device, floor: float) -> float:
    """Max abs difference between ``backend`` and the float32 PyTorch generator on a random 67x45 image."""
    image = torch.rand(1, 3, 67, 45, generator=torch.Generator().manual_seed(0)).to(device)
    mask = stand_in_mask(image, getattr(unwrap(generator), "takes_mask", False))
    reference = inference_copy(generator, device)
    with torch.inference_mode():
        expected = run_generator(reference, image, mask, floor)[0]
    return (backend(image, mask) - expected).abs().max().item()


def probe_ms(backend: Backend, device: torch.device) -> float:
    """Median ms of ``backend`` on a random ``PROBE_SIDE`` square image (about half a second of runs)."""
    image = torch.rand(1, 3, PROBE_SIDE, PROBE_SIDE, device=device)
    mask = stand_in_mask(image, backend.takes_mask)
    return measure_latency(lambda: backend(image, mask), min_time_s=0.3)["median"]


def select_backend(generator: nn.Module, device: torch.device, plan: InferencePlan, checkpoint: str | None = None,
                   channels_last: bool | None = None, probe: bool = True) -> Backend:
    """The backend the resolved ``plan`` names; ``auto`` = the fastest candidate (see the module doc).

    ``channels_last`` None = channels_last on CUDA, both formats as candidates on CPU.
    """
    if plan.backend == "onnxruntime":
        return onnx_backend(generator, device, plan.edit_floor, checkpoint)
    if channels_last is not None or device.type == "cuda":
        layouts = {"torch": device.type == "cuda" if channels_last is None else channels_last}
    else:
        layouts = dict(TORCH_LAYOUTS)
    export = existing_export(checkpoint) if plan.backend == "auto" and plan.precision == "fp32" else None
    candidates = [*layouts, *(["onnxruntime"] if export is not None and onnxruntime_installed() else [])]

    def build(name: str) -> Backend:
        if name == "onnxruntime":
            return onnx_backend(generator, device, plan.edit_floor, checkpoint)
        return TorchBackend(generator, device, plan.precision, layouts[name])

    if len(candidates) == 1:
        return build(candidates[0])
    key = probe_cache.probe_key(checkpoint, export, device, plan.precision, candidates) if checkpoint else None
    stored = probe_cache.cached_choice(key) if key is not None else None
    if stored is not None:
        backend = build(stored)
        backend.description += f" (the fastest of {len(candidates)} here, remembered in {probe_cache.cache_path()})"
        return backend
    if not probe:
        backend = build(candidates[0])
        backend.description += " (not probed: one image)"
        return backend
    built = [build(name) for name in candidates]
    timings = [probe_ms(candidate, device) for candidate in built]
    best = timings.index(min(timings))
    if key is not None:
        probe_cache.store_choice(key, candidates[best], dict(zip(candidates, timings, strict=True)))
    built[best].description += f" (fastest of {len(candidates)} on a {PROBE_SIDE}px probe)"
    return built[best]
