"""Checkpoints: atomic writes, clear errors, and rebuilding a generator from a checkpoint alone."""

from __future__ import annotations

import contextlib
import pickle
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gan_retouch.builtin.store import is_builtin, load_builtin, misfit_message
from gan_retouch.errors import CheckpointError, GanRetouchError
from gan_retouch.fileio import OutputError, atomic_write
from gan_retouch.inference.plan import saved_plan

FORMAT = "gan-retouch/1"
MODULES_PER_TENSOR = 20  # a network built from a checkpoint has at most this many modules per stored tensor (+ 1000)


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (``fileio.atomic_write``): the previous file or the new one, never a
    truncated one. Only tensors and plain data go in, so ``load_checkpoint`` can read it without unpickling code.
    A failed write (a full disk) is an OutputError naming the path and the free space."""
    try:
        return atomic_write(path, lambda stream: torch.save({"format": FORMAT, **state}, stream))
    except OutputError as exc:
        raise OutputError(f"{exc}; a training run continues from its last checkpoint with --resume") from exc


def is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip with code/ and constants.pkl), which is not a checkpoint."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/constants.pkl") or "/code/" in name for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                    builtin: str = "student") -> dict[str, Any]:
    """Read a gan-retouch checkpoint, or raise a CheckpointError that says what is wrong with the file.

    The one door for checkpoint names: ``builtin:teacher`` and ``builtin:student`` (a string, not a Path) are the
    models shipped with the package (``builtin.store``), ``builtin`` alone the ``builtin`` role."""
    if is_builtin(path):
        return {"format": FORMAT, **load_builtin(str(path), builtin, map_location=map_location)}
    path = Path(path)
    if path.is_dir():
        found = [path / name for name in ("best.pt", "latest.pt") if (path / name).is_file()]
        if not found:
            raise CheckpointError(f"{path} is a folder without best.pt or latest.pt: give a checkpoint file, or the "
                                  "run folder of a run that has saved one")
        path = found[0]
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if is_torchscript(path):
        raise CheckpointError(f"{path} is a TorchScript export (gan-retouch export), not a checkpoint: give the .pt "
                              "checkpoint it was exported from (best.pt or latest.pt in the run folder)")
    try:
        # Never unpickle: a checkpoint from someone else could run code. Only tensors and plain data load.
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "unsupported global" not in str(exc).lower():  # garbage bytes, not a forbidden object
            raise CheckpointError(f"cannot read checkpoint {path}: not a PyTorch file (or a damaged one)") from exc
        raise CheckpointError(
            f"refused to load {path}: it holds Python objects other than tensors and plain data (loading them could "
            "run code). gan-retouch checkpoints never do; get the file from its author again or retrain."
        ) from exc
    except Exception as exc:  # torch raises many types (some with bare numbers) for truncated or foreign files
        raise CheckpointError(f"cannot read checkpoint {path}: not a PyTorch file, or a truncated or damaged one "
                              f"({type(exc).__name__}); give the .pt file a gan-retouch run saved") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a gan-retouch checkpoint (no '{FORMAT}' format tag)")
    state["path"] = str(path)
    return state


def describe_network(entry: dict[str, Any]) -> str:
    """``name(arg=value, ...)`` for error messages."""
    args = ", ".join(f"{k}={v!r}" for k, v in sorted(entry.get("args", {}).items()))
    return f"{entry.get('name')}({args})"


def load_state_strict(module: nn.Module, state_dict: dict[str, Any], what: str, source: str) -> None:
    """``load_state_dict(strict=True)``, with an error that names the missing/unexpected/mismatched keys."""
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state_dict and hasattr(state_dict[k], "shape") and state_dict[k].shape != own[k].shape
    ]
    if missing or unexpected or mismatched:
        parts = []
        if mismatched:
            parts.append(f"shape mismatches (checkpoint vs model): {', '.join(mismatched[:5])}")
        if missing:
            parts.append(f"missing in checkpoint: {', '.join(missing[:5])}")
        if unexpected:
            parts.append(f"not in the model: {', '.join(unexpected[:5])}")
        raise CheckpointError(
            f"{source} does not fit this {what}: it was saved from another architecture. " + "; ".join(parts)
        )
    module.load_state_dict(state_dict)


def build_generator(entry: dict[str, Any]) -> nn.Module:
    """A generator from a checkpoint's ``{name, args}`` entry (weights not loaded)."""
    import gan_retouch.nets  # noqa: F401  (registers the generators)
    from gan_retouch.registry import GENERATORS

    return GENERATORS.build(entry["name"], **entry.get("args", {}))


@contextlib.contextmanager
def _module_limit(limit: int, what: str) -> Iterator[None]:
    """Stop a network that registers more than ``limit`` modules while it is built (a crafted depth)."""
    count = 0

    def hook(module: nn.Module, name: str, submodule: nn.Module | None) -> None:
        nonlocal count
        count += 1
        if count > limit:
            raise CheckpointError(f"{what}: its arguments build more than {limit} modules, far more than its tensors "
                                  "need; the file is damaged or was edited. Use a checkpoint gan-retouch wrote")

    handle = nn.modules.module.register_module_module_registration_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def build_checked_generator(entry: dict[str, Any], weights: dict[str, Any], source: str) -> nn.Module:
    """The generator of ``entry``, built only once its arguments are known to give exactly the shapes of the
    stored ``weights``: the network is first laid out on the meta device (no memory), so a crafted file cannot
    make it allocate more than its own tensors hold."""
    what = f"{source} (generator {describe_network(entry)})"
    try:
        with torch.device("meta"), _module_limit(MODULES_PER_TENSOR * len(weights) + 1000, what):
            layout = build_generator(entry).state_dict()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"cannot build the generator of {what}: {str(exc).splitlines()[0] if str(exc) else exc}"
                              "; the file is damaged or was edited") from None
    mismatched = [f"{k} {tuple(weights[k].shape)} stored vs {tuple(v.shape)} built" for k, v in layout.items()
                  if k in weights and getattr(weights[k], "shape", None) != v.shape]
    missing = [k for k in layout if k not in weights]
    if mismatched or missing:
        first = mismatched[0] if mismatched else f"{missing[0]} is not stored"
        raise CheckpointError(f"{what}: its arguments do not match its tensors ({first}; {len(mismatched)} shape "
                              f"mismatches, {len(missing)} missing); the file is damaged or was edited, so nothing "
                              "was built. Use a checkpoint gan-retouch wrote")
    return build_generator(entry)


def check_finite(weights: dict[str, Any], source: str) -> None:
    """A CheckpointError naming the tensors of ``weights`` that hold NaN or infinity (a run that diverged, or a
    damaged file): such a network writes black or garbage images without any error of its own."""
    bad = []
    for name, value in weights.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            nans = int(torch.isnan(value).sum())
            bad.append(f"{name} ({nans} NaN, {int(torch.isinf(value).sum())} infinite of {value.numel()} values)")
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more tensors" if len(bad) > 3 else "")
        raise CheckpointError(f"{source} holds non-finite weights: {shown}. The run that saved it diverged or the "
                              "file is damaged: use an earlier checkpoint of the run (latest.pt, step_N.pt), or retrain")


def load_generator(
    path: str | Path, use_ema: bool = True, map_location: str | torch.device = "cpu", builtin: str = "student"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the generator saved in a checkpoint, in eval mode; EMA weights when present and asked for.
    ``builtin``: the role ``builtin`` alone names (``load_checkpoint``).

    Returns the network and the checkpoint dict (options, step, ...), without the big state dicts, with
    ``plan``: the checkpoint's inference plan (``inference.plan.saved_plan``; derived for older checkpoints).
    """
    state = load_checkpoint(path, map_location, builtin)
    entry = state.get("generator")
    if not isinstance(entry, dict) or "state_dict" not in entry:
        raise CheckpointError(f"{state['path']} holds no generator")
    weights = state.get("generator_ema") if use_ema and state.get("generator_ema") else entry["state_dict"]
    if not isinstance(weights, dict):
        raise CheckpointError(f"{state['path']} holds no generator weights; the file is damaged or was edited")
    check_finite(weights, state["path"])
    try:
        generator = build_checked_generator(entry, weights, state["path"])
        load_state_strict(generator, weights, f"generator {describe_network(entry)}", state["path"])
    except (GanRetouchError, TypeError, ValueError, RuntimeError) as exc:
        if not state.get("builtin"):
            raise
        raise CheckpointError(misfit_message(state, str(exc))) from exc
    plan = saved_plan(state)
    generator.eval()
    info = {k: v for k, v in state.items() if k not in ("generator_ema", "discriminator", "optimizers")}
    info["generator"] = {k: v for k, v in entry.items() if k != "state_dict"}
    info["used_ema"] = bool(use_ema and state.get("generator_ema"))
    info["plan"] = plan
    return generator, info
