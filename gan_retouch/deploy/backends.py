"""Inference backends for `retouch` and `bench`: PyTorch (fused, in the faster memory format) or ONNX Runtime.

``select_backend`` returns a ``Backend``: a module with ``forward(images, mask=None)`` (float32 [0, 1] in and out,
any size, so ``nets.tiling.infer`` can run it over tiles) and a one-line description the commands print.

- ``torch``: an eval copy with BatchNorm folded into the convolutions (``fuse()``), at the asked precision. The
  memory format is channels_last on CUDA; on CPU both formats are timed on a small probe image and the faster
  is kept (dense convolutions gain from channels_last, some networks lose), with torch's CPU thread count.
- ``onnxruntime``: the model's ONNX export (``gan-retouch export``; the file next to the checkpoint when it
  exists, else exported now into a temporary folder) run by ONNX Runtime with the same thread count, after a
  parity check against PyTorch on a small image.
- ``auto``: PyTorch, and ONNX Runtime too when it is installed and an export already lies next to the
  checkpoint; both are timed on the probe and the faster is used.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch import nn

from gan_retouch.errors import CheckpointError, ConfigError, GanRetouchError
from gan_retouch.nets.base import run_generator, unwrap
from gan_retouch.nets.profile import inference_copy, measure_latency, stand_in_mask
from gan_retouch.registry import choice
from gan_retouch.runtime import precision_dtype

BACKENDS = ("auto", "torch", "onnxruntime")
PROBE_SIDE = 256
PARITY_TOLERANCE = 1e-3


class Backend(nn.Module):
    """A network ready for inference, and how it runs (``description``)."""

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

    def forward(self, images: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        x = images.to(self.dtype).contiguous(memory_format=memory_format)
        with torch.inference_mode():
            return run_generator(self.network, x, mask)[0].float()


class OnnxRuntimeBackend(Backend):
    """An ONNX file run by ONNX Runtime (CPU, or CUDA when its provider is installed and the device is CUDA)."""

    def __init__(self, path: Path, device: torch.device, source: str) -> None:
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
        self.device = device
        self.description = (f"onnxruntime {onnxruntime.__version__} ({providers[0]}, "
                            f"{torch.get_num_threads()} threads) from {source}")

    def forward(self, images: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        feed = {"image": images.float().cpu().numpy()}
        if self.takes_mask:
            if mask is None:
                raise ConfigError("this ONNX model takes a defect mask; run it through the torch backend")
            feed["mask"] = mask.float().cpu().numpy()
        return torch.from_numpy(self.session.run(None, feed)[0]).to(images.device)


def onnxruntime_installed() -> bool:
    """Whether the onnxruntime package can be imported."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def existing_export(checkpoint: str | None) -> Path | None:
    """The ONNX file `gan-retouch export` writes next to ``checkpoint`` by default, when it exists and is newer."""
    if not checkpoint:
        return None
    source = Path(checkpoint)
    candidate = source.with_suffix(".onnx")
    if candidate.is_file() and source.is_file() and candidate.stat().st_mtime >= source.stat().st_mtime:
        return candidate
    return None


def onnx_backend(generator: nn.Module, device: torch.device, checkpoint: str | None = None) -> Backend:
    """ONNX Runtime on the existing export of ``checkpoint``, or on a fresh export into a temporary folder (kept
    while the backend lives), checked against the PyTorch network on a small image."""
    if not onnxruntime_installed():
        raise ConfigError('the onnxruntime backend needs the onnxruntime package: pip install "gan-retouch[export]"'
                          " (or use backend torch)")
    path, folder = existing_export(checkpoint), None
    if path is None:
        from gan_retouch.deploy.export import export_model

        folder = tempfile.TemporaryDirectory(prefix="gan-retouch-onnx-")
        path = Path(folder.name) / "model.onnx"
        export_model(generator, "onnx", path, check=False)
    backend = OnnxRuntimeBackend(path, device, str(path) if folder is None else "an export made for this run")
    backend.folder = folder
    difference = parity(backend, generator, device)
    if difference > PARITY_TOLERANCE:
        raise GanRetouchError(f"the ONNX model {path} differs from the checkpoint by {difference:.3g} "
                              f"(> {PARITY_TOLERANCE:g}); export it again, or use backend torch")
    backend.description += f", parity with torch {difference:.1e}"
    return backend


def parity(backend: Backend, generator: nn.Module, device: torch.device) -> float:
    """Max abs difference between ``backend`` and the float32 PyTorch generator on a random 67x45 image."""
    image = torch.rand(1, 3, 67, 45, generator=torch.Generator().manual_seed(0)).to(device)
    mask = stand_in_mask(image, getattr(unwrap(generator), "takes_mask", False))
    reference = inference_copy(generator, device)
    with torch.inference_mode():
        expected = run_generator(reference, image, mask)[0]
    return (backend(image, mask) - expected).abs().max().item()


def probe_ms(backend: Backend, device: torch.device) -> float:
    """Median ms of ``backend`` on a random ``PROBE_SIDE`` square image (about half a second of runs)."""
    image = torch.rand(1, 3, PROBE_SIDE, PROBE_SIDE, device=device)
    mask = stand_in_mask(image, backend.takes_mask)
    return measure_latency(lambda: backend(image, mask), min_time_s=0.3)["median"]


def select_backend(generator: nn.Module, device: torch.device, backend: str = "auto", precision: str = "fp32",
                   key: str = "retouch", checkpoint: str | None = None,
                   channels_last: bool | None = None) -> Backend:
    """The backend named ``backend``; ``auto`` = the fastest candidate on a probe image (see the module doc).

    ``channels_last`` None = channels_last on CUDA, the faster format on CPU (probed); ``precision`` applies to
    torch (ONNX Runtime runs the fp32 export). ``key`` names the option group in error messages.
    """
    name = choice(backend, BACKENDS, f"{key}.backend")
    if name == "onnxruntime":
        if precision != "fp32":
            raise ConfigError(f"{key}.backend=onnxruntime runs the fp32 export; use {key}.precision=fp32 or "
                              "backend torch")
        return onnx_backend(generator, device, checkpoint)
    if channels_last is not None or device.type == "cuda":
        flag = device.type == "cuda" if channels_last is None else channels_last
        candidates: list[Backend] = [TorchBackend(generator, device, precision, flag)]
    else:
        candidates = [TorchBackend(generator, device, precision, flag) for flag in (False, True)]
    if name == "auto" and precision == "fp32" and onnxruntime_installed() and existing_export(checkpoint):
        candidates.append(onnx_backend(generator, device, checkpoint))
    if len(candidates) == 1:
        return candidates[0]
    timings = [probe_ms(candidate, device) for candidate in candidates]
    best = candidates[timings.index(min(timings))]
    best.description += f" (fastest of {len(candidates)} on a {PROBE_SIDE}px probe)"
    return best
