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

from gan_retouch.config import with_inference
from gan_retouch.console import console
from gan_retouch.deploy.backends import Backend, select_backend
from gan_retouch.deploy.half import auto_precision
from gan_retouch.deploy.image_files import ALPHA_FORMATS, FORMATS, encode_image, read_pixels
from gan_retouch.deploy.pipeline import Decoded, download, run_overlapped, upload
from gan_retouch.deploy.shares import launch_device, share
from gan_retouch.engine.distributed import launch_from_env
from gan_retouch.engine.load import load_model
from gan_retouch.errors import ConfigError, DataError, GanRetouchError
from gan_retouch.fileio import atomic_write, ensure_writable_dir
from gan_retouch.inference.plan import InferencePlan
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


def read_job(job: Job, settings: dict[str, Any], failed: list[tuple[str, str]]) -> Decoded[Job] | None:
    """The decoded pixels of one job (``image_files.read_pixels``), or None with the reason in ``failed``."""
    from gan_retouch.data.io import PixelLimit

    try:
        pixels, info = read_pixels(job.source, PixelLimit(settings["max_pixels"], "retouch.max_pixels"))
    except GanRetouchError as exc:
        failed.append((str(job.source), str(exc)))
        return None
    return Decoded(job, pixels, info)


def write_output(item: Decoded[Job], output: torch.Tensor, settings: dict[str, Any],
                 failed: list[tuple[str, str]], written: list[Path], skipped: list[tuple[str, str]]) -> None:
    """Encode and write one output (uint8 or float ``[3,H,W]``) atomically; the path goes to ``written``, a
    failure to ``failed``. Without ``retouch.overwrite`` a file that appeared meanwhile (another run into the
    same folder) is kept and the job goes to ``skipped``."""
    job, info = item.job, item.info
    if info["alpha"] is not None and FORMATS[job.target.suffix.lower().lstrip(".")][0] not in ALPHA_FORMATS:
        console.print(f"[yellow]note[/] {job.target}: this format has no alpha channel; the input's is dropped")
    try:
        data = encode_image(output, info, job.target.suffix.lower(), settings["quality"], settings["png_compression"])
        atomic_write(job.target, data, replace=bool(settings["overwrite"]))
        written.append(job.target)
    except FileExistsError:
        skipped.append((str(job.source), f"{job.target} appeared while this run worked (another run writing "
                                         "into the same folder?); it was kept. Use --overwrite to replace it"))
    except (OSError, GanRetouchError) as exc:
        failed.append((str(job.source), f"cannot write {job.target}: {exc}"))


def run_faces(plan: InferencePlan, backend: Backend, images: torch.Tensor, decoded: list[Decoded[Job]]) -> torch.Tensor:
    """Each image at its own face's scale, its features protected (``inference.face_scale``); a photo without a
    face is named and runs at the plan's working size."""
    outputs = []
    for item, image in zip(decoded, images, strict=True):
        resolved, face = face_plan(plan, image)
        if face is None:
            console.print(f"[yellow]note[/] {item.job.source}: no face found; retouched at "
                          f"{f'work size {plan.work_size} px' if plan.work_size else 'native resolution'}")
        outputs.append(run_face_plan(plan, backend, image[None], None, True, resolved, face))
    return torch.cat(outputs)


def batches_of(jobs: list[Job], batch_size: int) -> list[list[Job]]:
    """Jobs (sorted by size) in batches of at most ``batch_size`` same-sized images."""
    groups = [list(group) for _, group in groupby(jobs, key=lambda job: job.size)]
    return [group[start : start + batch_size] for group in groups for start in range(0, len(group), batch_size)]


def load_plan(settings: dict[str, Any], device: torch.device) -> tuple[torch.nn.Module, InferencePlan, str]:
    """The model, its inference plan with the retouch options applied, and the checkpoint's path."""
    auto = settings["precision"] == "auto"  # decided by a probe of this model on this device (deploy/half.py)
    loaded = load_model(settings["checkpoint"], {**settings, "precision": "fp32"} if auto else settings, "inference",
                        device)
    plan = loaded.plan
    if auto:
        plan, note = auto_precision(loaded.network, plan, device)
        if note:
            console.print(note)
    return loaded.network, plan, loaded.source


def run_retouch(options: dict[str, Any], inputs: list[str]) -> int:
    """Retouch every image in ``inputs`` into ``retouch.output``; 0 when all succeeded, 1 when any failed."""
    settings = with_inference(options, "retouch")
    launch = launch_from_env()  # under torchrun: this process's share of the files
    device = launch_device(resolve_device(options["device"]), launch)
    check_retouch_settings(settings)
    if not inputs:
        raise ConfigError("give the image files or folders to retouch, e.g. gan-retouch retouch photos/ -o out/")
    found, failed = find_images(inputs)
    folder = Path(settings["output"])
    found = share(found, [retouched_path(relative, folder, settings["suffix"], settings["format"]).resolve()
                          for _, relative in found], launch)
    failed = failed if launch.rank == 0 else []  # a bad input is reported once
    jobs, skipped = plan_jobs(found, settings)
    check_not_in_place(jobs, skipped, settings["output"])
    generator, plan, checkpoint = load_plan(settings, device)
    ensure_writable_dir(settings["output"], "retouch output folder")
    jobs = read_sizes(jobs, failed, settings["max_pixels"])
    jobs.sort(key=lambda job: job.size)
    backend = select_backend(generator, device, plan, checkpoint, probe=len(jobs) > 1)
    console.print(f"backend: {backend.description}")
    console.print(f"plan: {plan.describe()}")
    written: list[Path] = []
    tiled: set[tuple[int, int]] = set()
    columns = [TextColumn("[bold]retouching"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("retouching", total=len(jobs))

        def compute(decoded: list[Decoded[Job]]) -> list[torch.Tensor]:
            height, width = decoded[0].job.size
            tile = tile_for(plan, backend, height, width, len(decoded), device)
            if tile and max(work_shape(height, width, plan.work_size)) > tile and (height, width) not in tiled:
                tiled.add((height, width))
                progress.console.print(f"{height}x{width}: tiles of {tile} px ({plan.tile_overlap} px "
                                       "overlap) to stay within the memory budget")
            images = upload([item.pixels for item in decoded], device)
            if plan.face_width is not None or plan.protect_features:
                outputs = run_faces(plan, backend, images, decoded)
            else:
                outputs = run_plan(replace(plan, tile=tile), backend, images)
            return download(outputs, [item.info["bits"] for item in decoded])

        run_overlapped(batches_of(jobs, settings["batch_size"]), lambda job: read_job(job, settings, failed), compute,
                       lambda item, output: write_output(item, output, settings, failed, written, skipped),
                       lambda count: progress.advance(task, count))
    strength = f" at strength {plan.strength:g}" if plan.strength != 1.0 else ""
    console.print(f"retouched [bold]{len(written)}[/] image(s){strength} with {checkpoint} into "
                  f"{settings['output']} on {device}{launch.describe()}")
    for source, reason in skipped:
        console.print(f"[yellow]skipped[/] {source}: {reason}")
    for source, reason in failed:
        console.print(f"[red]failed[/] {source}: {reason}")
    if skipped or failed:
        console.print(f"{len(skipped)} skipped, {len(failed)} failed")
    in_place = any(IS_AN_INPUT in reason for _, reason in skipped)
    return 1 if failed or in_place else 0
