"""`gan-retouch retouch INPUT... -o OUT --checkpoint CKPT`: retouch photos at full resolution.

Inputs are image files or folders (searched recursively; the output mirrors their layout). Each image is read
upright (EXIF orientation applied), 8- or 16-bit; same-sized images are batched. The model runs under its
inference plan (``inference.plan``: the checkpoint's working size, coarse pass and edit floor, with the
``retouch.*`` options applied: ``work_size``, ``coarse_pass``, ``edit_floor``, ``strength``, tiling, precision,
backend), through the fastest installed backend (``deploy.backends``), the whole image at once unless it would
not fit the memory budget (then in overlapping tiles blended without seams). The output keeps the ICC profile,
EXIF (orientation reset) and the alpha channel where the format allows, and 16-bit PNGs stay 16-bit; PNGs are
written at ``retouch.png_compression``. Outputs are written atomically (``fileio``); an existing file or an input
is never overwritten unless ``retouch.overwrite``. An unreadable file is reported and the run goes on; the exit
status is 1 if any failed or was skipped for being an input.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import groupby
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from gan_retouch.console import console
from gan_retouch.deploy.backends import Backend, select_backend
from gan_retouch.deploy.image_files import ALPHA_FORMATS, FORMATS, encode_image, read_photo
from gan_retouch.engine.checkpoint import load_generator
from gan_retouch.errors import ConfigError, DataError, GanRetouchError
from gan_retouch.fileio import atomic_write, ensure_writable_dir
from gan_retouch.inference.plan import InferencePlan, ModelFacts, resolve_plan
from gan_retouch.inference.run import face_plan, run_face_plan, run_plan, tile_for
from gan_retouch.inference.work_size import work_shape
from gan_retouch.runtime import resolve_device

IS_AN_INPUT = "is an input"


@dataclass
class Job:
    """One image to retouch: where it comes from, where it goes, and its (height, width) from the header."""

    source: Path
    target: Path
    size: tuple[int, int] = (0, 0)


def find_images(inputs: list[str]) -> tuple[list[tuple[Path, Path]], list[tuple[str, str]]]:
    """``(file, path relative to the output folder)`` for every image in ``inputs``, and the bad inputs."""
    from gan_retouch.data.io import is_image_file

    found, failed = [], []
    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            images = sorted(p for p in path.rglob("*") if is_image_file(p))
            if not images:
                failed.append((spec, "folder holds no PNG/JPEG/WebP images"))
            found += [(p, p.relative_to(path)) for p in images]
        elif path.is_file():
            found.append((path, Path(path.name)))
        else:
            failed.append((spec, "no such file or folder"))
    return found, failed


def retouched_path(relative: Path, folder: Path, suffix: str, fmt: str) -> Path:
    """Where the retouched copy of ``relative`` goes: same stem + suffix, the input's or the chosen format."""
    if fmt == "same":
        extension = relative.suffix.lower()
    else:
        extension = FORMATS[fmt][1]
    return folder / relative.parent / f"{relative.stem}{suffix}{extension}"


def plan_jobs(found: list[tuple[Path, Path]], settings: dict[str, Any]) -> tuple[list[Job], list[tuple[str, str]]]:
    """The jobs to run, and the files skipped because their output exists, is an input, or is claimed twice."""
    folder = Path(settings["output"])
    inputs = {source.resolve() for source, _ in found}
    jobs: list[Job] = []
    skipped: list[tuple[str, str]] = []
    claimed: set[Path] = set()
    for source, relative in found:
        target = retouched_path(relative, folder, settings["suffix"], settings["format"])
        resolved = target.resolve()
        if resolved in claimed:
            skipped.append((str(source), f"another input also writes {target}; give a suffix or another format"))
        elif resolved in inputs and not settings["overwrite"]:
            skipped.append((str(source), f"{target} {IS_AN_INPUT}; use another -o folder, a suffix, or --overwrite"))
        elif target.exists() and not settings["overwrite"]:
            skipped.append((str(source), f"{target} exists; use --overwrite to replace it"))
        else:
            claimed.add(resolved)
            jobs.append(Job(source, target))
    return jobs, skipped


def check_retouch_settings(settings: dict[str, Any]) -> None:
    """ConfigErrors for missing or invalid retouch options, before any work (the plan's own fields are checked
    by ``inference.plan.resolve_plan``)."""
    if not settings["checkpoint"]:
        raise ConfigError("retouch needs a model: give --checkpoint PATH (retouch.checkpoint)")
    if not settings["output"]:
        raise ConfigError("retouch needs an output folder: give -o DIR (retouch.output)")
    if settings["batch_size"] < 1:
        raise ConfigError(f"retouch.batch_size must be >= 1, got {settings['batch_size']}")


def check_not_in_place(jobs: list[Job], skipped: list[tuple[str, str]], output: str) -> None:
    """A ConfigError when every output would replace its own input (``retouch in/ -o in/``): nothing to do."""
    if not jobs and skipped and all(IS_AN_INPUT in reason for _, reason in skipped):
        raise ConfigError(f"retouch.output {output} is where the inputs are: every output would replace its input, "
                          "so nothing would be written. Give another -o folder, --set retouch.suffix=_retouched, "
                          "or --overwrite to replace the originals")


def read_sizes(jobs: list[Job], failed: list[tuple[str, str]], max_pixels: int) -> list[Job]:
    """Jobs with their upright (height, width) from the file header; unreadable files, and images over
    ``max_pixels`` (``retouch.max_pixels``: never decoded), go to ``failed``."""
    from gan_retouch.data.io import PixelLimit, image_size

    readable = []
    for job in jobs:
        try:
            job.size = image_size(job.source, PixelLimit(max_pixels, "retouch.max_pixels"))
        except DataError as exc:
            failed.append((str(job.source), str(exc)))
            continue
        readable.append(job)
    return readable


def retouch_batch(jobs: list[Job], backend: Backend, plan: InferencePlan, settings: dict[str, Any],
                  device: torch.device, failed: list[tuple[str, str]], skipped: list[tuple[str, str]]) -> int:
    """Read, retouch (``plan``, its tile decided) and write one batch of same-sized images; returns how many were
    written. Without ``retouch.overwrite`` a file that appeared meanwhile (another run into the same folder) is
    kept and the job goes to ``skipped``."""
    from gan_retouch.data.io import PixelLimit

    loaded = []
    for job in jobs:
        try:
            image, info = read_photo(job.source, PixelLimit(settings["max_pixels"], "retouch.max_pixels"))
        except GanRetouchError as exc:
            failed.append((str(job.source), str(exc)))
            continue
        loaded.append((job, image, info))
    if not loaded:
        return 0
    batch = torch.stack([image for _, image, _ in loaded]).to(device)
    if plan.face_width is not None or plan.protect_features:  # each photo at its own face; a faceless one is named
        plans = [face_plan(plan, image) for image in batch]
        for (job, _, _), (_, face) in zip(loaded, plans, strict=True):
            if face is None:
                console.print(f"[yellow]note[/] {job.source}: no face found; retouched at "
                              f"{f'work size {plan.work_size} px' if plan.work_size else 'native resolution'}")
        outputs = torch.cat([run_face_plan(plan, backend, image[None], None, True, *found)
                             for found, image in zip(plans, batch, strict=True)])
    else:
        outputs = run_plan(plan, backend, batch)
    written = 0
    for (job, _, info), output in zip(loaded, outputs, strict=True):
        if info["alpha"] is not None and FORMATS[job.target.suffix.lower().lstrip(".")][0] not in ALPHA_FORMATS:
            console.print(f"[yellow]note[/] {job.target}: this format has no alpha channel; the input's is dropped")
        try:
            data = encode_image(output, info, job.target.suffix.lower(), settings["quality"],
                                settings["png_compression"])
            atomic_write(job.target, data, replace=bool(settings["overwrite"]))
            written += 1
        except FileExistsError:
            skipped.append((str(job.source), f"{job.target} appeared while this run worked (another run writing "
                                             "into the same folder?); it was kept. Use --overwrite to replace it"))
        except (OSError, GanRetouchError) as exc:
            failed.append((str(job.source), f"cannot write {job.target}: {exc}"))
    return written


def load_plan(settings: dict[str, Any], device: torch.device) -> tuple[torch.nn.Module, InferencePlan, str]:
    """The model, its inference plan with the retouch options applied, and the checkpoint's path."""
    generator, info = load_generator(settings["checkpoint"], use_ema=settings["use_ema"])
    source = str(info.get("path"))
    facts = ModelFacts(bool(getattr(generator, "edit_mask", False)), int(getattr(generator, "stride", 1)), source)
    return generator, resolve_plan(info["plan"], settings, "retouch", facts, device.type), source


def run_retouch(options: dict[str, Any], inputs: list[str]) -> int:
    """Retouch every image in ``inputs`` into ``retouch.output``; 0 when all succeeded, 1 when any failed."""
    settings = options["retouch"]
    device = resolve_device(options["device"])
    check_retouch_settings(settings)
    if not inputs:
        raise ConfigError("give the image files or folders to retouch, e.g. gan-retouch retouch photos/ -o out/")
    found, failed = find_images(inputs)
    jobs, skipped = plan_jobs(found, settings)
    check_not_in_place(jobs, skipped, settings["output"])
    generator, plan, checkpoint = load_plan(settings, device)
    ensure_writable_dir(settings["output"], "retouch output folder")
    jobs = read_sizes(jobs, failed, settings["max_pixels"])
    jobs.sort(key=lambda job: job.size)
    backend = select_backend(generator, device, plan, checkpoint, probe=len(jobs) > 1)
    console.print(f"backend: {backend.description}")
    console.print(f"plan: {plan.describe()}")
    written = 0
    columns = [TextColumn("[bold]retouching"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("retouching", total=len(jobs))
        for (height, width), same_size in groupby(jobs, key=lambda job: job.size):
            group = list(same_size)
            for start in range(0, len(group), settings["batch_size"]):
                batch = group[start : start + settings["batch_size"]]
                tile = tile_for(plan, backend, height, width, len(batch), device)
                if tile and max(work_shape(height, width, plan.work_size)) > tile:
                    progress.console.print(f"{height}x{width}: tiles of {tile} px ({plan.tile_overlap} px "
                                           "overlap) to stay within the memory budget")
                written += retouch_batch(batch, backend, replace(plan, tile=tile), settings, device, failed, skipped)
                progress.advance(task, len(batch))
    strength = f" at strength {plan.strength:g}" if plan.strength != 1.0 else ""
    console.print(f"retouched [bold]{written}[/] image(s){strength} with {checkpoint} into "
                  f"{settings['output']} on {device}")
    for source, reason in skipped:
        console.print(f"[yellow]skipped[/] {source}: {reason}")
    for source, reason in failed:
        console.print(f"[red]failed[/] {source}: {reason}")
    if skipped or failed:
        console.print(f"{len(skipped)} skipped, {len(failed)} failed")
    in_place = any(IS_AN_INPUT in reason for _, reason in skipped)
    return 1 if failed or in_place else 0
