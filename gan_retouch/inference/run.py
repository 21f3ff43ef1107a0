"""Running an inference plan: the one function validation, `test`, `retouch` and `bench` call.

``run_plan(plan, network, images, mask)`` computes the edit at the plan's working size (after the coarse pass
when it is on), in tiles when the plan asks for them or an image would not fit the memory budget, with the
plan's edit floor as an argument of every network call (the coarse pass uses ``COARSE_FLOOR`` at least), and
blends it in at the plan's strength: ``x + S * (edited - x)``, clamped to [0, 1]. ``network`` is a generator
(``nets.base.Generator``, wrapped or not) or an inference backend (``deploy.backends``): anything that
``run_generator`` can call with a ``floor``.

With a ``face_width`` in the plan, each image runs at the working size its largest face asks for
(``inference.face_scale``), and with ``protect_features`` its eyes, brows and mouth keep their pixels;
``face_plan`` gives that plan and the face, so commands can say what was found.

When a whole image runs out of memory the plan is run again in tiles of half the side (down to
``MIN_AUTO_TILE``), and the console says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch
from torch import nn

from gan_retouch.console import console
from gan_retouch.errors import GanRetouchError
from gan_retouch.inference.face_scale import face_work_size, largest_face, protect_features, writable
from gan_retouch.inference.plan import InferencePlan
from gan_retouch.inference.tiling import MIN_AUTO_TILE, auto_tile, memory_budget, run_tiled
from gan_retouch.inference.work_size import COARSE_FLOOR, at_work_size, work_shape
from gan_retouch.nets.base import run_generator, unwrap
from gan_retouch.synth.faces import Face

NetworkCall = Callable[[torch.Tensor, torch.Tensor | None, float], torch.Tensor]  # (images, mask, floor) -> RGB


def network_call(network: nn.Module) -> NetworkCall:
    """``(images, mask, floor) -> RGB`` for a generator or a backend; the floor goes only to networks with an
    edit map (``resolve_plan`` refuses a floor or coarse pass for the others)."""
    floored = bool(getattr(reference_network(network), "edit_mask", False))
    return lambda images, mask, floor: run_generator(network, images, mask, floor if floored else None)[0]


def reference_network(network: nn.Module) -> nn.Module:
    """The PyTorch module behind ``network`` (a backend's ``reference``), for its stride and memory estimate."""
    return unwrap(getattr(network, "reference", network))


def tile_for(plan: InferencePlan, network: nn.Module, height: int, width: int, batch: int,
             device: torch.device) -> int:
    """The plan's tile side for ``batch`` images of ``height`` x ``width``: its own, or with ``tile`` None (auto)
    0 when they fit the memory budget at the working size, else the largest tile that does."""
    if plan.tile is not None:
        return plan.tile
    shape = work_shape(height, width, plan.work_size)
    budget = memory_budget(plan.memory_mb, device)
    return auto_tile(reference_network(network), *shape, budget, batch, plan.tile_overlap)


def apply_plan(plan: InferencePlan, call: NetworkCall, images: torch.Tensor, mask: torch.Tensor | None = None,
               tile: int = 0, stride: int = 1) -> torch.Tensor:
    """The plan's output for ``images`` with the network ``call`` and a decided ``tile`` (0 = whole)."""

    def at_floor(floor: float) -> Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]:
        def run(x: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
            return run_tiled(lambda a, b: call(a, b, floor), x, m, tile, plan.tile_overlap, stride)

        return run

    coarse = at_floor(max(plan.edit_floor, COARSE_FLOOR)) if plan.coarse_pass else None
    edited = at_work_size(at_floor(plan.edit_floor), images, mask, plan.work_size, coarse).float()
    if plan.strength == 1.0:
        return edited  # in [0, 1] already (the networks clamp or end in tanh; the working size clamps)
    if not writable(edited, images):
        return (images + plan.strength * (edited - images)).clamp_(0.0, 1.0)
    return edited.sub_(images).mul_(plan.strength).add_(images).clamp_(0.0, 1.0)  # x + S (edited - x), in place


def face_plan(plan: InferencePlan, image: torch.Tensor) -> tuple[InferencePlan, Face | None]:
    """``(plan for this one image, its largest face or None)``: with a ``face_width`` the working size follows that
    face (the plan's ``work_size`` when there is none); the returned plan no longer looks for faces."""
    if plan.face_width is None and not plan.protect_features:
        return plan, None
    face = largest_face(image)
    work_size = plan.work_size
    if face is not None and plan.face_width is not None:
        work_size = face_work_size(plan.face_width, face, tuple(image.shape[-2:]))
    return replace(plan, work_size=work_size, face_width=None, protect_features=False), face


def run_face_plan(plan: InferencePlan, network: nn.Module, image: torch.Tensor, mask: torch.Tensor | None,
                  fallback: bool, resolved: InferencePlan, face: Face | None) -> torch.Tensor:
    """One image under ``resolved`` (its ``face_plan``), its face's features protected when ``plan`` asks."""
    output = run_plan(resolved, network, image, mask, fallback)
    if plan.protect_features and face is not None:
        output = protect_features(output, image, face)
    return output


@torch.no_grad()
def run_plan(plan: InferencePlan, network: nn.Module, images: torch.Tensor, mask: torch.Tensor | None = None,
             fallback: bool = True) -> torch.Tensor:
    """``network``'s output ``[N,3,H,W]`` in [0, 1] for ``images`` (float, [0, 1]) under ``plan``; out of memory,
    it runs again in smaller tiles when ``fallback`` (see the module docstring), else the error is raised."""
    if plan.face_width is not None or plan.protect_features:
        outputs = [run_face_plan(plan, network, images[i : i + 1], None if mask is None else mask[i : i + 1],
                                 fallback, *face_plan(plan, images[i])) for i in range(images.shape[0])]
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)  # one photo: no copy of it
    height, width = images.shape[-2:]
    tile = tile_for(plan, network, height, width, images.shape[0], images.device)
    stride = int(getattr(reference_network(network), "stride", 1))
    call = network_call(network)
    while True:
        try:
            return apply_plan(plan, call, images, mask, tile, stride)
        except torch.OutOfMemoryError as exc:
            if not fallback:
                raise
            side = max(work_shape(height, width, plan.work_size)) if tile == 0 else tile
            smaller = max(side // 2 // 64 * 64, MIN_AUTO_TILE)
            if side <= MIN_AUTO_TILE or smaller <= 2 * plan.tile_overlap:
                raise GanRetouchError(f"out of memory on a {width}x{height} image even in tiles of {side} px: lower "
                                      "the batch size, or run on a device with more memory") from exc
            if images.device.type == "cuda":
                torch.cuda.empty_cache()
            console.print(f"[yellow]note[/] out of memory on a {width}x{height} image "
                          f"({'whole' if tile == 0 else f'tiles of {tile} px'}): running it again in tiles of "
                          f"{smaller} px")
            tile = smaller
