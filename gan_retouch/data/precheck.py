"""The pre-check of folder pairs: every file decoded once in full, sizes compared, input and target lined up.

A header-only check lets a JPEG with corrupt scan data through, to stop training mid-run; so every file is
decoded, and what is decoded feeds the in-memory cache (``gan_retouch.data.cache``) when it is on. The
alignment check (``gan_retouch.data.alignment``) runs on the same pixels. Results are remembered with the
decoded files, so another build on the same pairs (the next stage of a recipe) does not check them again.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from gan_retouch.data.alignment import check_alignment
from gan_retouch.data.cache import DecodedFiles, file_key
from gan_retouch.errors import DataError

if TYPE_CHECKING:
    from gan_retouch.data.folders import PairRecord


@dataclass(frozen=True)
class PairCheck:
    """The pre-check of one pair: what makes it unusable, and what the alignment check found (when it ran)."""

    problem: str | None
    misaligned: str | None = None
    alignment_checked: bool = False


def _halves(pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    half = pixels.shape[-1] // 2
    return pixels[..., :half], pixels[..., half : 2 * half]


def _check_pair(record: PairRecord, files: DecodedFiles, aligned: bool, alignment: bool) -> PairCheck:
    try:
        pixels = files.decode(record.input)
        if aligned and pixels.shape[-1] % 2:
            return PairCheck(f"{record.input}: aligned A|B image has odd width {pixels.shape[-1]}")
        source, target = _halves(pixels) if aligned else (pixels, None)
        size = tuple(source.shape[-2:])
        for other in (p for p in (record.target, record.mask) if p is not None):
            pixels = files.decode(other)
            if tuple(pixels.shape[-2:]) != size:
                return PairCheck(f"size mismatch: {record.input} is {size[0]}x{size[1]} but {other} is "
                                 f"{pixels.shape[-2]}x{pixels.shape[-1]}")
            if other == record.target:
                target = pixels
    except DataError as exc:
        return PairCheck(str(exc))
    if not alignment:
        return PairCheck(None)
    result = check_alignment(source, target)
    return PairCheck(None, None if result.aligned else result.describe(), alignment_checked=True)


def _pair_check(record: PairRecord, files: DecodedFiles, aligned: bool, alignment: bool) -> PairCheck:
    """The remembered check of an unchanged pair when it covers what is asked now, else a new one."""
    paths = tuple(p for p in (record.input, record.target, record.mask) if p is not None)
    try:  # the limit and the layout change what the check finds, so they are part of what it is remembered by
        key = (files.limit.pixels, aligned, *((path, file_key(path)) for path in paths))
    except OSError as exc:
        return PairCheck(f"cannot read {exc.filename}: {exc.strerror}")
    known = files.checks.get(key)
    if (known is None or (alignment and not known.alignment_checked and known.problem is None)
            or (files.keep and not all(files.holds(path) for path in paths))):
        known = files.checks[key] = _check_pair(record, files, aligned, alignment)
    return known


def check_pairs(records: list[PairRecord], files: DecodedFiles, aligned: bool, alignment: str) -> dict[str, str]:
    """Pair name -> problem, for the pairs that cannot be used. A misaligned pair gets a warning of one line
    (``alignment="warn"``) or is a problem (``"error"``); ``"off"`` skips the alignment check."""
    problems = {}
    for record in records:
        check = _pair_check(record, files, aligned, alignment != "off")
        if check.problem is not None:
            problems[record.name] = check.problem
        elif check.misaligned is not None and alignment != "off":
            pair = f"{record.input} and {record.target}" if record.target else f"the halves of {record.input}"
            if alignment == "error":
                problems[record.name] = f"{pair} do not line up: {check.misaligned} (data.alignment=warn only warns)"
            else:
                warnings.warn(f"data.alignment: {pair} do not line up: {check.misaligned}", stacklevel=3)
    return problems
