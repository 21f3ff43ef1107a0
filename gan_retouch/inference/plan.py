"""The inference plan: how a model runs on a photo, decided once and used by every command.

A model's plan holds what its checkpoint decides, the **model fields** (``work_size``, ``coarse_pass``,
``edit_floor``, ``face_width``, ``protect_features``, ``strength``: written by training from its ``inference``
option group, ``options/inference.yaml``, the floor from ``model.generator.args.edit_floor`` unless set, and a
strength of ``auto`` chosen on held-out pixels after training; with a face width the working size is chosen per
photo from its face, ``inference.face_scale``; saved as the checkpoint's ``inference`` block), and what each run
sets, the **run fields** (tiling: ``tile``, ``tile_overlap``, ``memory_mb``; ``precision``, ``backend``: saved at
their defaults). Validation, ``test``, ``retouch``, ``bench`` and ``export`` all start from the saved plan, apply
their ``inference.*`` options with ``resolve_plan`` (an override of None keeps a model field: "the checkpoint's
own") and run it with ``inference.run.run_plan``. Every value is checked here, and so is every combination that
cannot run (a coarse pass or another floor on an ONNX export, whose floor is built in; half precision off CUDA; a
floor or coarse pass without an edit map), each with one clear ConfigError.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from gan_retouch.errors import CheckpointError, ConfigError
from gan_retouch.inference.work_size import MIN_WORK_SIZE, coarse_shape, work_shape
from gan_retouch.nets.heads import check_edit_floor
from gan_retouch.registry import choice
from gan_retouch.runtime import PRECISION_DTYPES
from gan_retouch.values import is_integer, is_number

BACKENDS = ("auto", "torch", "onnxruntime")
MODEL_FIELDS = ("work_size", "coarse_pass", "edit_floor", "face_width", "protect_features", "strength")  # None keeps them


@dataclass(frozen=True)
class InferencePlan:
    """How a model runs: see the module docstring. ``tile`` 0 = whole images, None = auto (tiles only when an
    image would not fit ``memory_mb``, None = a share of the free memory); ``work_size`` None = native;
    ``face_width`` None = the working size does not follow the face; ``protect_features``: the edit is faded out
    over the eyes, brows and mouth of the largest face."""

    work_size: int | None = None
    coarse_pass: bool = False
    edit_floor: float = 0.0
    face_width: int | None = None
    protect_features: bool = False
    strength: float = 1.0
    tile: int | None = 0
    tile_overlap: int = 64
    memory_mb: float | None = None
    precision: str = "fp32"
    backend: str = "torch"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a checkpoint's ``inference`` block and for reports."""
        return asdict(self)

    def describe(self, height: int | None = None, width: int | None = None) -> str:
        """One line for the commands' output (the backend has its own line); with an image size, the shapes the
        network runs at."""
        size = f"work size {self.work_size} px" if self.work_size is not None else "native resolution"
        if self.face_width is not None:
            return (f"scaled so the largest face is {self.face_width} px wide ({size} when no face is found); "
                    + self._rest())
        if height is not None and width is not None:
            shape = work_shape(height, width, self.work_size)
            size += f" (network at {shape[1]}x{shape[0]} for {width}x{height}"
            if self.coarse_pass:
                coarse = coarse_shape(*shape)
                size += f", coarse pass at {coarse[1]}x{coarse[0]}"
            size += ")"
        return f"{size}; " + self._rest()

    def _rest(self) -> str:
        tiles = {0: "whole images", None: "tiles only when an image does not fit memory"}.get(
            self.tile, f"tiles of {self.tile} px")
        protect = "eyes, brows and mouth protected; " if self.protect_features else ""
        return (f"{protect}coarse pass {'on' if self.coarse_pass else 'off'}; edit floor {self.edit_floor:g}; "
                f"strength {self.strength:g}; {tiles} ({self.tile_overlap} px overlap); {self.precision}")


FIELDS = tuple(f.name for f in fields(InferencePlan))


def check_plan(plan: InferencePlan, key: str) -> InferencePlan:
    """``plan`` with every value checked (``key`` prefixes the field names in errors: ``inference.work_size``)."""
    work_size = plan.work_size
    if work_size is not None and (not is_integer(work_size) or work_size < MIN_WORK_SIZE):
        raise ConfigError(f"{key}.work_size = {work_size!r} is not a working size; valid: an integer >= "
                          f"{MIN_WORK_SIZE} (the longer side, in pixels, at which the network sees an image) or "
                          "null (native resolution; a run's override also takes 0)")
    face_width = plan.face_width
    if face_width is not None and (not is_integer(face_width) or not 16 <= face_width <= 4096):
        raise ConfigError(f"{key}.face_width = {face_width!r} is not a face width; valid: an integer in [16, 4096] "
                          "(pixels) or null (the working size does not follow faces; a run's override also takes 0)")
    if not isinstance(plan.protect_features, bool):
        raise ConfigError(f"{key}.protect_features must be true or false; got {plan.protect_features!r}")
    if not isinstance(plan.coarse_pass, bool):
        raise ConfigError(f"{key}.coarse_pass must be true or false; got {plan.coarse_pass!r}")
    floor = check_edit_floor(plan.edit_floor, True, f"{key}.edit_floor")
    if not is_number(plan.strength) or not 0.0 <= plan.strength <= 1.0:
        raise ConfigError(f"{key}.strength = {plan.strength!r} is out of range; valid: [0, 1] "
                          "(0 = the input unchanged, 1 = the model's full edit), e.g. --strength 0.7")
    tile, overlap = plan.tile, plan.tile_overlap
    if (tile is not None and not is_integer(tile)) or not is_integer(overlap) or (tile or 0) < 0 or overlap < 0:
        raise ConfigError(f"{key}.tile and {key}.tile_overlap must be integers >= 0; got {tile!r} and {overlap!r}")
    if tile and tile <= 2 * overlap:
        raise ConfigError(f"{key}.tile={tile} must exceed twice {key}.tile_overlap={overlap} so that tiles advance; "
                          f"use e.g. {key}.tile={max(4 * overlap, 256)} or lower {key}.tile_overlap")
    if plan.memory_mb is not None and (not is_number(plan.memory_mb) or plan.memory_mb <= 0):
        raise ConfigError(f"{key}.memory_mb must be a positive number of MB or null; got {plan.memory_mb!r}")
    choice(plan.precision, tuple(PRECISION_DTYPES), f"{key}.precision")
    choice(plan.backend, BACKENDS, f"{key}.backend")
    return replace(plan, edit_floor=floor, strength=float(plan.strength))


def overridden(plan: InferencePlan, settings: Mapping[str, Any], key: str) -> InferencePlan:
    """``plan`` with the plan fields of ``settings`` (an option group) applied: a None model field keeps the
    plan's, a ``work_size`` of 0 means native; other keys of ``settings`` are not the plan's and are skipped."""
    changes = {name: settings[name] for name in FIELDS if name in settings}
    changes = {name: value for name, value in changes.items() if value is not None or name not in MODEL_FIELDS}
    for name in ("work_size", "face_width"):
        if is_integer(changes.get(name)) and changes[name] == 0:
            changes[name] = None
    return check_plan(replace(plan, **changes), key)


@dataclass(frozen=True)
class ModelFacts:
    """What resolving a plan needs to know about the model: its edit map, stride, and where it came from."""

    edit_map: bool
    stride: int = 1
    source: str = "the model"


def resolve_plan(saved: InferencePlan, settings: Mapping[str, Any], key: str, model: ModelFacts,
                 device_type: str = "cpu") -> InferencePlan:
    """The plan a run of ``model`` uses: ``saved`` with the option group ``settings`` (named ``key``) applied,
    checked against the model and the device, ``auto`` backends narrowed to torch where only PyTorch can run it
    (a coarse pass, or another floor than the one an export has built in)."""
    plan = overridden(saved, settings, key)
    floor_changed = plan.edit_floor != saved.edit_floor
    if not model.edit_map and (plan.edit_floor or plan.coarse_pass):
        what = f"{key}.edit_floor" if plan.edit_floor else f"{key}.coarse_pass=true"
        raise ConfigError(f"{what} needs a model with an edit map; {model.source} was trained without "
                          f"model.generator.args.edit_mask: true (drop {what.split('=')[0]})")
    if plan.precision != "fp32" and device_type != "cuda":
        raise ConfigError(f"{key}.precision={plan.precision} needs a CUDA device; use fp32 on {device_type}")
    if plan.backend == "onnxruntime":
        if plan.precision != "fp32":
            raise ConfigError(f"{key}.backend=onnxruntime runs the fp32 export; use {key}.precision=fp32 or "
                              f"{key}.backend=torch")
        if floor_changed:
            raise ConfigError(f"{key}.edit_floor changes the PyTorch model, but an ONNX export has its floor built in: "
                              f"use --set {key}.backend=torch, or export the model again with the floor you want")
        if plan.coarse_pass:
            why = "as asked" if settings.get("coarse_pass") is not None else f"{model.source} runs it unless told"
            raise ConfigError(f"{key}.coarse_pass is on ({why}): its first pass raises the edit map's floor, but an "
                              f"ONNX export has its floor built in: use --set {key}.backend=torch or "
                              f"{key}.coarse_pass=false")
    if plan.backend == "auto" and (floor_changed or plan.coarse_pass):
        plan = replace(plan, backend="torch")
    if plan.tile and plan.tile - plan.tile_overlap < model.stride:
        raise ConfigError(f"{key}.tile={plan.tile} must exceed {key}.tile_overlap ({plan.tile_overlap}) by at "
                          f"least the network's stride ({model.stride})")
    return plan


def plan_for(network: Any, saved: InferencePlan, settings: Mapping[str, Any], key: str, device_type: str = "cpu",
             source: str = "the model") -> InferencePlan:
    """``resolve_plan`` for ``network`` (any generator: its edit map and stride are read from it; ``source``
    names it in errors)."""
    facts = ModelFacts(bool(getattr(network, "edit_mask", False)), int(getattr(network, "stride", 1)), source)
    return resolve_plan(saved, settings, key, facts, device_type)


def saved_plan(state: Mapping[str, Any]) -> InferencePlan:
    """The plan saved in a checkpoint: its ``inference`` block, or for checkpoints written before there was one,
    the working size and coarse pass of its ``generator`` entry and the floor of the generator's arguments."""
    source = state.get("path", "the checkpoint")
    block = state.get("inference")
    entry = state.get("generator") or {}
    if block is None:
        block = {"work_size": entry.get("work_size"), "coarse_pass": entry.get("coarse_pass", False),
                 "edit_floor": (entry.get("args") or {}).get("edit_floor", 0.0)}
    if not isinstance(block, Mapping):
        raise CheckpointError(f"{source} holds an inference plan that is not a mapping: {block!r}")
    unknown = sorted(set(block) - set(FIELDS))
    if unknown:
        raise CheckpointError(f"{source} holds inference settings this gan-retouch does not know ({', '.join(unknown)}): "
                              "it was written by a newer version; update gan-retouch")
    try:
        return check_plan(InferencePlan(**block), "inference")
    except ConfigError as exc:
        raise CheckpointError(f"{source} holds an invalid inference plan: {exc}") from exc


def training_plan(options: Mapping[str, Any]) -> InferencePlan:
    """The plan a training run saves and validates with, from its ``inference`` group: ``work_size`` (``auto`` =
    the pixel scale of the training images: ``data.synthetic.size``; for folders ``data.resize`` or
    ``data.max_side`` when set, else native), ``coarse_pass`` (needs ``args.edit_mask``), ``edit_floor`` (null =
    the generator's ``model.generator.args.edit_floor``), ``face_width``, ``protect_features`` (null = false) and
    ``strength`` (null and auto = 1: auto is chosen after training, ``engine.strength``); 0 = off for the sizes."""
    entry, group = options["model"]["generator"], options["inference"]
    work_size = group["work_size"]
    if work_size == "auto":
        data = options["data"]
        work_size = (int(data["synthetic"]["size"]) if data["source"] == "synthetic"
                     else data.get("resize") or data.get("max_side") or None)
    args = entry.get("args") or {}
    key = "inference.edit_floor" if group["edit_floor"] is not None else "model.generator.args.edit_floor"
    floor = group["edit_floor"] if group["edit_floor"] is not None else args.get("edit_floor", 0.0)
    floor = check_edit_floor(floor, bool(args.get("edit_mask", False)), key)
    coarse = bool(group["coarse_pass"])
    if coarse and not args.get("edit_mask", False):
        raise ConfigError("inference.coarse_pass=true needs an edit map (it keeps only the edits the map is "
                          "nearly sure of): set model.generator.args.edit_mask=true or inference.coarse_pass=false")
    strength = group["strength"]
    plan = InferencePlan(work_size=work_size or None, coarse_pass=coarse, edit_floor=floor,
                         face_width=group["face_width"] or None, protect_features=bool(group["protect_features"]),
                         strength=1.0 if strength in (None, "auto") else strength)
    return check_plan(plan, "inference")
