"""The in-memory cache of decoded pairs (``data.cache``): each file decoded once, by the pre-check, then read from RAM.

Decoding a 1024 px PNG costs about as much as a training step of the quick start on the CPU, and a pair is read
again for every crop. When the decoded set fits the budget (``data.cache_mb``, or half the memory available
when the run starts, shared by the node's DDP ranks) the pre-check keeps the pixels it decodes anyway, as
decoded: uint8 (uint16 for 16-bit PNG) ``[C,H,W]``, 4x smaller than float. The size is known before anything is
decoded, from the file headers. Every build of a dataset on the same ``data.root`` in this process (the
validation split, the training split, the next stage of a recipe) shares the decoded files, so a run decodes
each file once in total; a file that changed on disk (size or modification time) is decoded again. A build on
another root starts a new store; datasets built earlier keep their own files alive.

The pre-check's results are remembered with the files, cache or not, so another build on the same pairs checks
nothing again. DataLoader workers read the parent's cache without copying it: forked workers (Linux) share its pages
copy-on-write, and with the spawn start method torch moves the tensors to shared memory. Each DDP rank is a
process of its own and keeps its own cache, hence the budget split over the ranks of a node.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from gan_retouch.data.io import DEFAULT_LIMIT, PixelLimit, data_limit, open_image
from gan_retouch.data.pixels import ARRAY_EXTENSION, array_bytes, read_pixels
from gan_retouch.errors import ConfigError, DataError

SETTINGS = ("auto", True, False)
MEMORY_SHARE = 0.5  # of the memory available when the pre-check runs, without data.cache_mb
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FileKey = tuple[int, int]  # (size in bytes, modification time in ns): a file that changed gets decoded again


def file_key(path: Path) -> FileKey:
    """What identifies a file's content for the cache: its size and modification time."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _png_bit_depth(path: Path) -> int:
    """The bit depth in a PNG's IHDR chunk (Pillow reports 16-bit RGB as 8-bit "RGB"); 8 for other files."""
    with path.open("rb") as stream:
        head = stream.read(26)
    return head[24] if len(head) == 26 and head.startswith(PNG_SIGNATURE) else 8


def decoded_bytes(path: Path, limit: PixelLimit = DEFAULT_LIMIT) -> int:
    """Bytes of ``path``'s decoded pixels, from its header only (0 when unreadable or over ``limit``: the
    pre-check reports it)."""
    if path.suffix.lower() == ARRAY_EXTENSION:
        return array_bytes(path)
    try:
        with open_image(path, limit) as header:
            width, height = header.size
            bands = len(header.getbands())
            if header.mode in ("P", "PA"):  # palette images decode to RGB, or RGBA with transparency
                bands = 4 if header.mode == "PA" or "transparency" in header.info else 3
    except DataError:
        return 0
    return width * height * bands * (2 if _png_bit_depth(path) == 16 else 1)


def available_memory() -> int | None:
    """Bytes of memory available to new allocations now (MemAvailable on Linux), or None when unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _size(count: int) -> str:
    return f"{count / 2**30:,.1f} GB" if count >= 2**30 else f"{count / 2**20:.2f} MB"


def cache_budget(data: dict[str, Any]) -> tuple[int | None, str]:
    """Bytes this process may keep decoded, and where that figure comes from (for messages)."""
    if data.get("cache_mb") is not None:
        return int(float(data["cache_mb"]) * 2**20), f"data.cache_mb={data['cache_mb']}"
    available = available_memory()
    if available is None:
        return None, "the available memory is unknown on this system: set data.cache_mb"
    ranks = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    shared = f", split over {ranks} processes" if ranks > 1 else ""
    return int(available * MEMORY_SHARE / ranks), f"half of the {_size(available)} available now{shared}"


class DecodedFiles:
    """Decoded pixels of image files by path; with ``keep``, what ``decode`` reads from disk stays in memory.

    ``checks`` holds the pre-check's results by the checked files' keys, so unchanged pairs are not checked twice.
    """

    def __init__(self, keep: bool, pixels: dict[Path, tuple[FileKey, torch.Tensor]] | None = None,
                 checks: dict[Any, Any] | None = None, limit: PixelLimit = DEFAULT_LIMIT) -> None:
        self.keep = keep
        self.pixels = {} if pixels is None else pixels
        self.checks = {} if checks is None else checks
        self.limit = limit  # data.max_pixels: a file over it is an error from its header, never decoded

    def decode(self, path: Path) -> torch.Tensor:
        """The file's pixels: from memory when they are here and the file is unchanged, else decoded from disk."""
        key = file_key(path) if self.pixels or self.keep else None
        held = self.pixels.get(path)
        if held is not None and held[0] == key:
            return held[1]
        pixels = read_pixels(path, self.limit)
        if self.keep:
            self.pixels[path] = (key, pixels)
        return pixels

    def get(self, path: Path) -> torch.Tensor | None:
        """The kept pixels of ``path`` (no disk access), or None."""
        held = self.pixels.get(path)
        return None if held is None else held[1]

    def holds(self, path: Path) -> bool:
        held = self.pixels.get(path)
        return held is not None and held[0] == file_key(path)

    def nbytes(self) -> int:
        return sum(pixels.nbytes for _, pixels in self.pixels.values())


_store: tuple[Path, DecodedFiles] | None = None  # the data root of the last build and its decoded files


def cache_setting(data: dict[str, Any]) -> Any:
    setting = data.get("cache", "auto")
    if setting not in SETTINGS or not isinstance(setting, (bool, str)):
        raise ConfigError(f"data.cache must be auto, true or false, got {setting!r}")
    return setting


def decoded_files(data: dict[str, Any], root: Path, paths: Iterable[Path], where: str) -> DecodedFiles:
    """The decoded files of a pre-check under ``root``: kept in memory when ``data.cache`` says so and they fit.

    ``data.cache: true`` with a set that does not fit is an error saying how much is needed and available.
    """
    global _store
    setting = cache_setting(data)
    root = root.resolve()
    if _store is None or _store[0] != root:
        _store = (root, DecodedFiles(keep=False))
    limit = data_limit(data)
    if setting is False:
        return DecodedFiles(keep=False, checks=_store[1].checks, limit=limit)
    files = DecodedFiles(keep=False, pixels=_store[1].pixels, checks=_store[1].checks, limit=limit)
    needed = sum(decoded_bytes(path, limit) for path in set(paths) if not files.holds(path))
    budget, source = cache_budget(data)
    if budget is not None and needed <= budget:
        files.keep = True
        return files
    if setting is True:
        have = "no budget" if budget is None else f"{_size(budget)} may be used ({source})"
        raise ConfigError(
            f"data.cache=true: the decoded pairs of {where} need {_size(needed)} of memory, but {have}. Raise "
            f"data.cache_mb if the memory is there, set data.cache=auto (cache when it fits) or false, or cut the "
            f"pairs into sub-images with `gan-retouch prepare`, which load fast from disk"
        )
    warnings.warn(
        f"data.cache=auto: the decoded pairs of {where} need {_size(needed)}, more than the cache may use "
        f"({_size(budget) if budget is not None else 'unknown'}: {source}); every step decodes its pairs from "
        f"disk. `gan-retouch prepare` cuts large pairs into sub-images that load fast", stacklevel=3)
    return files
