"""`gan-retouch retouch INPUT... -o OUT --checkpoint CKPT`: retouch photos at full resolution.

Inputs are image files or folders (searched recursively; the output mirrors their layout). Each image is read
upright (EXIF orientation applied), 8- or 16-bit; same-sized images are batched. The network runs through the
fastest installed backend (``deploy.backends``; ``retouch.backend`` forces one) and the whole image at once
unless it would not fit the memory budget, in which case it runs in overlapping tiles blended without seams
(``nets.tiling``; ``retouch.tile`` forces a tile size). ``retouch.strength`` S blends the edit:
``x + S * (model(x) - x)``; ``retouch.edit_floor`` replaces an edit-mask model's floor for the run. A photo
larger than the model's working size (``retouch.work_size``, default the checkpoint's) is scaled down for the
network and the edit scaled back up and added at full resolution (``nets.work_size``). The output
keeps the ICC profile, EXIF (orientation reset) and the alpha channel where the format allows, and 16-bit PNGs
stay 16-bit. Outputs are written atomically (``fileio``); an existing file or an input is never overwritten unless
``retouch.overwrite``. An unreadable file is reported and the run goes on; the exit status is 1 if any failed or
was skipped for being an input.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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
from gan_retouch.nets.base import override_edit_floor
from gan_retouch.nets.tiling import auto_tile, check_tiling, infer
from gan_retouch.nets.work_size import (
    override_work_size,
    use_coarse_pass,
    work_shape,
    work_size_of,
    work_size_override,
)
from gan_retouch.registry import choice
from gan_retouch.runtime import PRECISION_DTYPES, resolve_device
from gan_retouch.values import is_number

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


def check_retouch_settings(settings: dict[str, Any], device: torch.device) -> None:
    """ConfigErrors for missing or invalid retouch options, before any work."""
    if not settings["checkpoint"]:
        raise ConfigError("retouch needs a model: give --checkpoint PATH (retouch.checkpoint)")
    if not settings["output"]:
        raise ConfigError("retouch needs an output folder: give -o DIR (retouch.output)")
    choice(settings["format"], ["same", *FORMATS], "retouch.format")
    choice(settings["precision"], list(PRECISION_DTYPES), "retouch.precision")
    if settings["precision"] != "fp32" and device.type != "cuda":
        raise ConfigError(f"retouch.precision={settings['precision']} needs a CUDA device; use fp32 on {device}")
    if settings["batch_size"] < 1:
        raise ConfigError(f"retouch.batch_size must be >= 1, got {settings['batch_size']}")
    strength = settings["strength"]
    if not is_number(strength) or not 0.0 <= strength <= 1.0:
        raise ConfigError(f"retouch.strength = {strength!r} is out of range; valid: [0, 1] "
                          "(0 = the input unchanged, 1 = the model's full edit), e.g. --strength 0.7")
    if settings["edit_floor"] is not None and settings["backend"] == "onnxruntime":  # its range: options/retouch.yaml
        raise ConfigError("retouch.edit_floor changes the PyTorch model, but an ONNX export has its floor built in: "
                          "use --set retouch.backend=torch, or export the model again with the floor you want")
    check_tiling(settings["tile"] or 0, settings["tile_overlap"], "retouch.tile")
    if settings["work_size"] is not None:  # None = the checkpoint's
        work_size_override(settings["work_size"], "retouch.work_size")
    if settings["coarse_pass"] is not None and not isinstance(settings["coarse_pass"], bool):
        raise ConfigError(f"retouch.coarse_pass must be null (the checkpoint's), true or false; "
                          f"got {settings['coarse_pass']!r}")
    if settings["coarse_pass"] is True and settings["backend"] == "onnxruntime":
        raise ConfigError("retouch.coarse_pass=true raises the edit map's floor for its first pass, but an ONNX export "
                          "has its floor built in: use --set retouch.backend=torch or retouch.coarse_pass=false")


def apply_edit_floor(generator: torch.nn.Module, settings: dict[str, Any], checkpoint: str | None) -> str:
    """Give the model ``retouch.edit_floor`` when set; returns the backend to ask for (torch when the floor is
    changed, since an ONNX export next to the checkpoint keeps the floor it was exported with)."""
    override_edit_floor(generator, settings["edit_floor"], "retouch.edit_floor", str(checkpoint))
    return settings["backend"] if settings["edit_floor"] is None else "torch"


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


def memory_budget(settings: dict[str, Any], device: torch.device) -> float:
    """Bytes one batch may use: ``retouch.memory_mb``, else 70 % of the free GPU memory or half the available RAM."""
    if settings["memory_mb"] is not None:
        return float(settings["memory_mb"]) * 1e6
    if device.type == "cuda":
        return 0.7 * torch.cuda.mem_get_info(device)[0]
    try:
        return 0.5 * os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):  # no sysconf for it on this platform: assume a small machine
        return 2e9


def apply_strength(images: torch.Tensor, edited: torch.Tensor, strength: float) -> torch.Tensor:
    """``x + S * (edit - x)``: 0 = the input, 1 = the full edit, in between a linear blend."""
    if strength == 1.0:
        return edited
    return images + strength * (edited - images)


def retouch_batch(jobs: list[Job], backend: Backend, plan: tuple[int, int | None, bool], settings: dict[str, Any],
                  device: torch.device, failed: list[tuple[str, str]]) -> int:
    """Read, retouch and write one batch of same-sized images; returns how many were written.

    ``plan`` is (tile side, working size, coarse pass) for ``nets.tiling.infer``."""
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
    tile, work_size, coarse = plan
    edited = infer(backend, batch, tile=tile, overlap=settings["tile_overlap"], work_size=work_size,
                   coarse=coarse).float()
    outputs = apply_strength(batch, edited, float(settings["strength"])).clamp(0, 1)
    written = 0
    for (job, _, info), output in zip(loaded, outputs, strict=True):
        if info["alpha"] is not None and FORMATS[job.target.suffix.lower().lstrip(".")][0] not in ALPHA_FORMATS:
            console.print(f"[yellow]note[/] {job.target}: this format has no alpha channel; the input's is dropped")
        try:
            atomic_write(job.target, encode_image(output, info, job.target.suffix.lower(), settings["quality"]))
            written += 1
        except (OSError, GanRetouchError) as exc:
            failed.append((str(job.source), f"cannot write {job.target}: {exc}"))
    return written


def run_retouch(options: dict[str, Any], inputs: list[str]) -> int:
    """Retouch every image in ``inputs`` into ``retouch.output``; 0 when all succeeded, 1 when any failed."""
    settings = options["retouch"]
    device = resolve_device(options["device"])
    check_retouch_settings(settings, device)
    if not inputs:
        raise ConfigError("give the image files or folders to retouch, e.g. gan-retouch retouch photos/ -o out/")
    found, failed = find_images(inputs)
    jobs, skipped = plan_jobs(found, settings)
    check_not_in_place(jobs, skipped, settings["output"])
    ensure_writable_dir(settings["output"], "retouch output folder")
    generator, info = load_generator(settings["checkpoint"], use_ema=settings["use_ema"])
    backend_name = apply_edit_floor(generator, settings, info.get("path"))
    coarse = use_coarse_pass(settings["coarse_pass"], generator, "retouch.coarse_pass")
    if coarse:
        if backend_name == "onnxruntime":
            raise ConfigError(f"{info.get('path')} runs a coarse pass, which raises the edit map's floor, but an ONNX "
                              "export has its floor built in: use --set retouch.backend=torch or "
                              "retouch.coarse_pass=false")
        backend_name = "torch"
    override_work_size(generator, settings["work_size"], "retouch.work_size")
    work_size = work_size_of(generator)
    backend = select_backend(generator, device, backend_name, settings["precision"], "retouch",
                             checkpoint=info.get("path"))
    console.print(f"backend: {backend.description}; coarse pass {'on' if coarse else 'off'}")
    if work_size is not None:
        console.print(f"work size: {work_size} px (photos with a longer side are scaled down for the network, its "
                      "edit is scaled back up and added at full resolution; --work-size 0 for native)")
    jobs = read_sizes(jobs, failed, settings["max_pixels"])
    jobs.sort(key=lambda job: job.size)
    budget = memory_budget(settings, device)
    written = 0
    columns = [TextColumn("[bold]retouching"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("retouching", total=len(jobs))
        for (height, width), same_size in groupby(jobs, key=lambda job: job.size):
            group = list(same_size)
            for start in range(0, len(group), settings["batch_size"]):
                batch = group[start : start + settings["batch_size"]]
                tile = settings["tile"]
                if tile is None:
                    tile = auto_tile(generator, *work_shape(height, width, work_size), budget, len(batch),
                                     settings["tile_overlap"])
                if tile and max(work_shape(height, width, work_size)) > tile:
                    progress.console.print(f"{height}x{width}: tiles of {tile} px ({settings['tile_overlap']} px "
                                           "overlap) to stay within the memory budget")
                written += retouch_batch(batch, backend, (tile, work_size, coarse), settings, device, failed)
                progress.advance(task, len(batch))
    strength = f" at strength {settings['strength']:g}" if settings["strength"] != 1.0 else ""
    console.print(f"retouched [bold]{written}[/] image(s){strength} with {info.get('path')} into "
                  f"{settings['output']} on {device}")
    for source, reason in skipped:
        console.print(f"[yellow]skipped[/] {source}: {reason}")
    for source, reason in failed:
        console.print(f"[red]failed[/] {source}: {reason}")
    if skipped or failed:
        console.print(f"{len(skipped)} skipped, {len(failed)} failed")
    in_place = any(IS_AN_INPUT in reason for _, reason in skipped)
    return 1 if failed or in_place else 0
