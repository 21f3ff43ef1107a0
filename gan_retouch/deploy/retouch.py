"""`gan-retouch retouch INPUT... -o OUT --checkpoint CKPT`: retouch photos at full resolution.

Inputs are image files or folders (searched recursively; the output mirrors their layout). Each image is read
upright (EXIF orientation applied), 8- or 16-bit; same-sized images are batched; large ones can be tiled. The
output keeps the ICC profile and EXIF (orientation reset) where the format allows, and 16-bit PNGs stay 16-bit.
Outputs are written atomically (temp file + rename); an existing file or an input is never overwritten unless
``retouch.overwrite``. An unreadable file is reported and the run goes on; the exit status is 1 if any failed.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from gan_retouch.console import console
from gan_retouch.engine.checkpoint import load_generator
from gan_retouch.errors import ConfigError, DataError, GanRetouchError
from gan_retouch.imaging import tensor_to_pil
from gan_retouch.nets.tiling import check_tiling, infer
from gan_retouch.registry import choice
from gan_retouch.runtime import resolve_device

FORMATS = {"png": ("PNG", ".png"), "jpg": ("JPEG", ".jpg"), "jpeg": ("JPEG", ".jpg"), "webp": ("WEBP", ".webp")}
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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


def output_path(relative: Path, folder: Path, suffix: str, fmt: str) -> Path:
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
        target = output_path(relative, folder, settings["suffix"], settings["format"])
        resolved = target.resolve()
        if resolved in claimed:
            skipped.append((str(source), f"another input also writes {target}; give a suffix or another format"))
        elif resolved in inputs and not settings["overwrite"]:
            skipped.append((str(source), f"{target} is an input; use another -o folder, a suffix, or --overwrite"))
        elif target.exists() and not settings["overwrite"]:
            skipped.append((str(source), f"{target} exists; use --overwrite to replace it"))
        else:
            claimed.add(resolved)
            jobs.append(Job(source, target))
    return jobs, skipped


def encode_png16(image: torch.Tensor, icc_profile: bytes | None, exif: bytes | None) -> bytes:
    """A 16-bit RGB PNG of ``image`` ([3,H,W] in [0, 1]) with iCCP and eXIf chunks (Pillow writes 8-bit RGB only)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width = image.shape[-2:]
    pixels = (image.detach().float().clamp(0, 1) * 65535.0).round().permute(1, 2, 0).cpu().numpy()
    rows = pixels.astype(">u2").reshape(height, width * 3).view(np.uint8)
    scanlines = np.hstack([np.zeros((height, 1), dtype=np.uint8), rows])  # filter type 0 on every row
    parts = [PNG_SIGNATURE, chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))]
    if icc_profile:
        parts.append(chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc_profile)))
    if exif:
        parts.append(chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
    parts += [chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6)), chunk(b"IEND", b"")]
    return b"".join(parts)


def encode_image(image: torch.Tensor, info: dict[str, Any], extension: str, quality: int) -> bytes:
    """The file bytes for ``image`` in the format of ``extension``, carrying ICC profile and EXIF."""
    pil_format = FORMATS[extension.lstrip(".")][0]
    if pil_format == "PNG" and info.get("bits") == 16:
        return encode_png16(image, info.get("icc_profile"), info.get("exif"))
    extras: dict[str, Any] = {}
    if info.get("icc_profile"):
        extras["icc_profile"] = info["icc_profile"]
    if info.get("exif"):
        extras["exif"] = info["exif"]
    if pil_format in ("JPEG", "WEBP"):
        extras["quality"] = quality
    buffer = io.BytesIO()
    tensor_to_pil(image).save(buffer, format=pil_format, **extras)
    return buffer.getvalue()


def write_atomically(data: bytes, path: Path) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder, so no half-written file is left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Mixed precision for fp16/bf16 on CUDA; fp32 runs as is."""
    choice(precision, list(PRECISIONS), "retouch.precision")
    if precision == "fp32":
        return contextlib.nullcontext()
    if device.type != "cuda":
        raise ConfigError(f"retouch.precision={precision} needs a CUDA device; use fp32 on {device}")
    return torch.autocast("cuda", dtype=PRECISIONS[precision])


def check_settings(settings: dict[str, Any]) -> None:
    """ConfigErrors for missing or invalid retouch options."""
    if not settings["checkpoint"]:
        raise ConfigError("retouch needs a model: give --checkpoint PATH (retouch.checkpoint)")
    if not settings["output"]:
        raise ConfigError("retouch needs an output folder: give -o DIR (retouch.output)")
    choice(settings["format"], ["same", *FORMATS], "retouch.format")
    if settings["batch_size"] < 1:
        raise ConfigError(f"retouch.batch_size must be >= 1, got {settings['batch_size']}")
    check_tiling(settings["tile"], settings["tile_overlap"], "retouch.tile")


def read_sizes(jobs: list[Job], failed: list[tuple[str, str]]) -> list[Job]:
    """Jobs with their upright (height, width) from the file header; unreadable files go to ``failed``."""
    from gan_retouch.data.io import image_size

    readable = []
    for job in jobs:
        try:
            job.size = image_size(job.source)
        except DataError as exc:
            failed.append((str(job.source), str(exc)))
            continue
        readable.append(job)
    return readable


def retouch_batch(jobs: list[Job], generator: torch.nn.Module, settings: dict[str, Any], device: torch.device,
                  failed: list[tuple[str, str]]) -> int:
    """Read, retouch and write one batch of same-sized images; returns how many were written."""
    from gan_retouch.data import read_image_with_info

    loaded = []
    for job in jobs:
        try:
            image, info = read_image_with_info(job.source)
        except GanRetouchError as exc:
            failed.append((str(job.source), str(exc)))
            continue
        loaded.append((job, image, info))
    if not loaded:
        return 0
    batch = torch.stack([image for _, image, _ in loaded]).to(device)
    with autocast(device, settings["precision"]):
        outputs = infer(generator, batch, tile=settings["tile"], overlap=settings["tile_overlap"]).float()
    written = 0
    for (job, _, info), output in zip(loaded, outputs, strict=True):
        try:
            write_atomically(encode_image(output, info, job.target.suffix.lower(), settings["quality"]), job.target)
            written += 1
        except OSError as exc:
            failed.append((str(job.source), f"cannot write {job.target}: {exc}"))
    return written


def run_retouch(options: dict[str, Any], inputs: list[str]) -> int:
    """Retouch every image in ``inputs`` into ``retouch.output``; 0 when all succeeded, 1 when any failed."""
    settings = options["retouch"]
    check_settings(settings)
    if not inputs:
        raise ConfigError("give the image files or folders to retouch, e.g. gan-retouch retouch photos/ -o out/")
    device = resolve_device(options["device"])
    autocast(device, settings["precision"])  # fail early on an impossible precision
    generator, info = load_generator(settings["checkpoint"], use_ema=settings["use_ema"])
    generator = generator.to(device).eval()
    found, failed = find_images(inputs)
    jobs, skipped = plan_jobs(found, settings)
    jobs = read_sizes(jobs, failed)
    jobs.sort(key=lambda job: job.size)
    written = 0
    columns = [TextColumn("[bold]retouching"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("retouching", total=len(jobs))
        for _, same_size in groupby(jobs, key=lambda job: job.size):
            group = list(same_size)
            for start in range(0, len(group), settings["batch_size"]):
                batch = group[start : start + settings["batch_size"]]
                written += retouch_batch(batch, generator, settings, device, failed)
                progress.advance(task, len(batch))
    console.print(f"retouched [bold]{written}[/] image(s) with {info.get('path')} into {settings['output']} on {device}")
    for source, reason in skipped:
        console.print(f"[yellow]skipped[/] {source}: {reason}")
    for source, reason in failed:
        console.print(f"[red]failed[/] {source}: {reason}")
    if skipped or failed:
        console.print(f"{len(skipped)} skipped, {len(failed)} failed")
    return 1 if failed else 0
