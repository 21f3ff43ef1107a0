"""`gan-retouch prepare`: cut large training pairs into overlapping sub-images that load fast (BasicSR's
extract_subimages, for pairs), for sets too large for the in-memory cache.

The pairs are found and pre-checked exactly as ``data.source=folder`` (or ``aligned``) reads them, with the same
``data.*`` options; a flat folder is split by ``data.split_ratio`` first, so no photo has sub-images in two
splits. ``OUT/train/`` gets sub-images of ``prepare.size`` px every ``prepare.step`` px (the last one flush with
the edge, so every pixel is in one), named ``<stem>_s001`` ... row by row; ``OUT/val/`` and ``OUT/test/`` get
the whole pairs, since validation scores whole photos. Each split has ``source/``, ``target/`` and, with masks,
``mask/``. Files are the decoded pixels, upright (EXIF orientation applied), without alpha: ``.npy`` arrays
(uint8, or uint16 from 16-bit PNG), read without decoding, or PNG at compression level 1. Colour profiles and
metadata are not carried. The folder is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from gan_retouch.console import console
from gan_retouch.data.folders import ALL, SPLIT_NAMES, PairRecord, check_new_output, find_pairs, ratio_split
from gan_retouch.data.io import PixelLimit, data_limit
from gan_retouch.data.pixels import read_pixels
from gan_retouch.errors import ConfigError
from gan_retouch.fileio import OutputError, ensure_writable_dir, remove_stale_temps, temp_path
from gan_retouch.registry import choice

FORMATS = ("npy", "png")
PNG_LEVEL = 1  # zlib level: decoding costs the same at every level, level 1 writes fastest
ROLES = (("input", "source"), ("target", "target"), ("mask", "mask"))


def positions(length: int, size: int, step: int) -> list[int]:
    """Starts of the windows of ``size`` every ``step`` px along ``length``, the last flush with the end."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, step))
    if starts[-1] + size < length:
        starts.append(length - size)
    return starts


def sub_images(pixels: torch.Tensor, size: int, step: int) -> Iterator[torch.Tensor]:
    """The overlapping ``size`` px windows of ``[C,H,W]`` pixels, row by row."""
    height, width = pixels.shape[-2:]
    for top in positions(height, size, step):
        for left in positions(width, size, step):
            yield pixels[:, top : top + size, left : left + size]


def _opaque(pixels: torch.Tensor) -> torch.Tensor:
    """Without the alpha channel (training uses opaque images: the loader would drop it anyway)."""
    return pixels[: pixels.shape[0] - 1] if pixels.shape[0] in (2, 4) else pixels


def write_pixels(pixels: torch.Tensor, path: Path) -> None:
    """Write ``[C,H,W]`` uint8/uint16 pixels (C = 1 or 3) as ``.npy`` or as PNG (by the path's suffix)."""
    array = np.ascontiguousarray(pixels.numpy())
    if path.suffix == ".npy":
        np.save(path, array)
        return
    hwc = array[0] if array.shape[0] == 1 else cv2.cvtColor(array.transpose(1, 2, 0), cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), hwc, [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL]):
        raise OSError(f"cannot write {path}")


def _pair_pixels(record: PairRecord, limit: PixelLimit) -> dict[str, torch.Tensor]:
    """The pair's pixels by role (input, target, mask), aligned A|B files split in halves."""
    source = read_pixels(record.input, limit)
    pixels = {}
    if record.target is None:
        half = source.shape[-1] // 2
        pixels["input"], pixels["target"] = source[..., :half], source[..., half : 2 * half]
    else:
        pixels["input"], pixels["target"] = source, read_pixels(record.target, limit)
    if record.mask is not None:
        pixels["mask"] = read_pixels(record.mask, limit)
    return {role: _opaque(value) for role, value in pixels.items()}


def write_split(records: list[PairRecord], folder: Path, cut: tuple[int, int] | None, extension: str,
                limit: PixelLimit) -> int:
    """Write the pairs of one split under ``folder`` (cut into sub-images when ``cut`` = (size, step)); the count."""
    written = 0
    for record in records:
        pixels = _pair_pixels(record, limit)
        pieces = {role: list(sub_images(value, *cut)) if cut else [value] for role, value in pixels.items()}
        for index in range(len(pieces["input"])):
            stem = f"{record.name}_s{index + 1:03d}" if cut else record.name
            for role, sub in ROLES:
                if role in pieces:
                    (folder / sub).mkdir(parents=True, exist_ok=True)
                    write_pixels(pieces[role][index].contiguous(), folder / sub / f"{stem}{extension}")
            written += 1
    return written


def split_records(data: dict[str, Any]) -> dict[str, list[PairRecord]]:
    """The pre-checked pairs of each split, as training would split ``data.root``."""
    root = Path(data["root"]).expanduser()
    present = [name for name in SPLIT_NAMES if (root / name).is_dir()]
    if present:
        return {split: find_pairs(data, split)[0] for split in present}
    records = find_pairs(data, ALL)[0]
    names = [record.name for record in records]
    ratios = list(data.get("split_ratio", [0.9, 0.05, 0.05]))
    splits = {split: set(ratio_split(names, ratios, split)) for split in SPLIT_NAMES}
    return {split: [r for r in records if r.name in chosen] for split, chosen in splits.items() if chosen}


def run_prepare(options: dict[str, Any]) -> int:
    """Run `gan-retouch prepare` with the resolved options; returns the exit status."""
    prepare, data = options["prepare"], {**options["data"], "cache": False}  # each pair is read once more, to cut
    if data["source"] == "synthetic" or not data.get("root"):
        raise ConfigError("gan-retouch prepare reads your pairs from a folder: give it with --data DIR")
    if not prepare.get("out"):
        raise ConfigError("gan-retouch prepare needs an output folder: --out DIR")
    extension = "." + choice(prepare["format"], FORMATS, "prepare.format")
    size, step = int(prepare["size"]), int(prepare["step"])
    if step > size:
        console.print(f"[yellow]prepare.step {step} > prepare.size {size}: the sub-images leave gaps between them[/]")
    out = Path(prepare["out"]).expanduser()
    if out.exists():
        raise ConfigError(f"prepare.out {out} already exists: choose a new folder (prepare never writes into one)")
    check_new_output(out, "prepare.out")
    ensure_writable_dir(out.parent, "prepare output folder")
    remove_stale_temps(out.parent)  # the half-written outputs of runs killed outright (SIGKILL)
    splits = split_records(data)
    staging = temp_path(out)
    try:
        for split, records in splits.items():
            cut = (size, step) if split == "train" else None
            count = write_split(records, staging / split, cut, extension, data_limit(data))
            what = f"{count} sub-images of at most {size} px" if cut else f"{count} whole pairs"
            console.print(f"{split}: {len(records)} pairs -> {what}")
        staging.rename(out)
    except OSError as exc:
        raise OutputError(f"cannot write {exc.filename or out}: {exc.strerror or exc}; nothing was kept. Free "
                          f"space or choose another --out") from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    console.print(f"wrote {out}; train on it with --set data.source=folder data.root={out}")
    return 0
