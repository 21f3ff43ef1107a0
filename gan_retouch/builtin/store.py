"""The built-in models by name: ``builtin``, ``builtin:teacher``, ``builtin:student`` -> a checkpoint-shaped dict.

Each model is two files of package data in this folder (docs/builtin.md):

- ``<role>.json``, its manifest: the generator (``name``, ``args``), the inference plan, the weights file's name,
  sha256, size and storage dtype, the training record, the licence and the score ``make`` recorded;
- ``<role>.pt``, its weights: a state dict of tensors only (fp16 or fp32 storage), read with ``weights_only=True``.

``engine.checkpoint.load_checkpoint`` is the one door: every command that takes a checkpoint takes these names.
A file that is missing, truncated or not the one its manifest describes is one ``CheckpointError`` that says so
and how to reinstall; nothing here falls back to anything else.

``GAN_RETOUCH_BUILTIN_DIR`` names another folder to read the files from instead of the package's (the tests' fake
models; a maintainer checking a new set before copying it in). When it is set, only that folder is read.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from gan_retouch.errors import CheckpointError, ConfigError

PREFIX = "builtin"
ROLES = ("student", "teacher")  # builtin:<role>
KINDS = {"teacher": "train", "student": "distill"}  # the checkpoint kind each role stands for
ENV = "GAN_RETOUCH_BUILTIN_DIR"
MANIFEST_FORMAT = "gan-retouch-builtin/1"
REINSTALL = "reinstall gan-retouch (pip install --force-reinstall gan-retouch)"
PACKAGE_DIR = Path(__file__).resolve().parent


def is_builtin(spec: Any) -> bool:
    """Whether a checkpoint option names a built-in model (``builtin`` or ``builtin:<anything>``) rather than a file."""
    return isinstance(spec, str) and (spec == PREFIX or spec.startswith(PREFIX + ":"))


def role_of(spec: str, default: str) -> str:
    """The role ``spec`` names (``builtin`` alone: ``default``); an unknown name is a ConfigError with the closest."""
    if default not in ROLES:
        raise ValueError(f"default role {default!r} is not one of {ROLES}")
    role = default if spec == PREFIX else spec[len(PREFIX) + 1:]
    if role in ROLES:
        return role
    close = difflib.get_close_matches(role, ROLES, n=1, cutoff=0.5)
    hint = f"did you mean {PREFIX}:{close[0]}? " if close else ""
    valid = ", ".join([f"{PREFIX} (here {PREFIX}:{default})"] + [f"{PREFIX}:{name}" for name in ROLES])
    raise ConfigError(f"unknown built-in model {spec!r}: {hint}the built-in models are {valid}")


def canonical(spec: str, default: str) -> str:
    """``builtin:<role>`` for a built-in name (what a run records in its options.yaml)."""
    return f"{PREFIX}:{role_of(spec, default)}"


def folder() -> Path:
    """Where the built-in files are read: ``$GAN_RETOUCH_BUILTIN_DIR`` when set, else this package's folder."""
    override = os.environ.get(ENV)
    return Path(override).expanduser() if override else PACKAGE_DIR


def _fix(where: Path) -> str:
    """How to repair a missing or damaged file in ``where``."""
    if os.environ.get(ENV):
        return (f"{ENV}={where} points there: unset it to use the installed models, or write the files there "
                "with python -m gan_retouch.builtin.make")
    return REINSTALL


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checked_manifest(data: Any, path: Path, role: str) -> dict[str, Any]:
    """``data`` when it has every field a loader needs, with the right types; else a CheckpointError."""
    needed = {"format": str, "role": str, "kind": str, "generator": dict, "inference": dict, "weights": dict}
    problems = [f"{key} is not a {kind.__name__}" for key, kind in needed.items()
                if not isinstance(data, dict) or not isinstance(data.get(key), kind)]
    if not problems:
        weights = data["weights"]
        problems += [f"weights.{key} is missing" for key in ("file", "sha256", "bytes") if key not in weights]
        if data["format"] != MANIFEST_FORMAT:
            problems.append(f"format {data['format']!r} is not {MANIFEST_FORMAT!r}")
        elif data["role"] != role:
            problems.append(f"it describes the {data['role']}, not the {role}")
        if not isinstance(data["generator"].get("name"), str) or not isinstance(data["generator"].get("args", {}),
                                                                                dict):
            problems.append("generator has no name or its args are not a mapping")
    if problems:
        raise CheckpointError(f"the built-in {role}'s manifest {path} is damaged ({'; '.join(problems)}): "
                              f"{_fix(path.parent)}")
    return data


def read_manifest(role: str, where: Path | None = None) -> dict[str, Any]:
    """The manifest of the built-in ``role`` in ``where`` (default: ``folder()``), checked for the fields loading
    needs; missing or damaged, a CheckpointError naming the file and the fix."""
    where = folder() if where is None else where
    path = where / f"{role}.json"
    if not path.is_file():
        raise CheckpointError(f"the built-in {role} is not installed ({path} is missing): {_fix(where)}, or give "
                              "a checkpoint of your own")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"the built-in {role}'s manifest {path} is damaged ({exc}): {_fix(where)}") from exc
    return _checked_manifest(data, path, role)


def weights_path(manifest: dict[str, Any], where: Path) -> Path:
    """The weights file a manifest names, checked to be a plain name inside ``where``."""
    name = str(manifest["weights"]["file"])
    if Path(name).name != name or not name.endswith(".pt"):
        raise CheckpointError(f"the built-in {manifest['role']}'s manifest in {where} names the weights file "
                              f"{name!r}, which is not a .pt file of that folder: {_fix(where)}")
    return where / name


def verify_weights(manifest: dict[str, Any], where: Path) -> Path:
    """The weights file of ``manifest``, after checking that it exists and has the recorded size and sha256."""
    role, path = manifest["role"], weights_path(manifest, where)
    if not path.is_file():
        raise CheckpointError(f"the built-in {role}'s weights {path} are missing: {_fix(where)}")
    size, expected = path.stat().st_size, int(manifest["weights"]["bytes"])
    if size != expected:
        damage = "truncated" if size < expected else "damaged"
        raise CheckpointError(f"the built-in {role}'s weights {path} are {damage}: {size} bytes where its manifest "
                              f"records {expected}: {_fix(where)}")
    digest = sha256_of(path)
    if digest != manifest["weights"]["sha256"]:
        raise CheckpointError(f"the built-in {role}'s weights {path} are damaged: sha256 {digest[:16]}... is not the "
                              f"{str(manifest['weights']['sha256'])[:16]}... its manifest records: {_fix(where)}")
    return path


def read_weights(path: Path, role: str, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """A weights-only file as a float32 state dict (fp16 storage is widened); anything else is a CheckpointError."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for foreign files
        raise CheckpointError(f"cannot read the built-in {role}'s weights {path} ({type(exc).__name__}): "
                              f"{_fix(path.parent)}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"the built-in {role}'s weights {path} are not a state dict of tensors: "
                              f"{_fix(path.parent)}")
    return widened(state)


def widened(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with its floating tensors in float32 (the networks run in fp32 unless a plan says otherwise)."""
    return {key: value.float() if value.is_floating_point() else value for key, value in state.items()}


def load_builtin(spec: str, default: str, where: Path | None = None,
                 map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The built-in model ``spec`` names (``builtin`` alone: the ``default`` role) as a checkpoint dict: ``kind``,
    ``generator`` (``name``, ``args``, ``state_dict``), ``inference``, ``path`` (the weights file), ``builtin``
    (its canonical name) and ``manifest``. ``where`` overrides ``folder()``."""
    role = role_of(spec, default)
    where = folder() if where is None else where
    manifest = read_manifest(role, where)
    path = verify_weights(manifest, where)
    generator = manifest["generator"]
    return {
        "kind": KINDS[role],
        "generator": {"name": generator["name"], "args": dict(generator.get("args") or {}),
                      "state_dict": read_weights(path, role, map_location)},
        "inference": dict(manifest["inference"]),
        "step": manifest.get("step"),
        "path": str(path),
        "builtin": f"{PREFIX}:{role}",
        "manifest": manifest,
    }


def misfit_message(state: dict[str, Any], reason: str) -> str:
    """The error for built-in weights that do not fit the generator their manifest names: another version's files,
    or a damaged manifest."""
    path = state["path"]
    reason = reason.removeprefix(f"{path} ").rstrip(".")
    return (f"the built-in {state['builtin'].split(':')[-1]} ({path}) does not fit the generator its manifest names "
            f"({reason}): its files are damaged or from another gan-retouch version; {_fix(Path(path).parent)}")
