"""The decoded pixels of a pair file: image files (through ``io``) and the ``.npy`` arrays `gan-retouch prepare` writes.

An ``.npy`` file holds what decoding an image gives, uint8 (or uint16) ``[C,H,W]`` with C in 1..4, so reading it
is a copy from disk instead of a decode: 50-100 times faster than a PNG of the same pixels (benchmarks/README.md).
It is loaded without pickle, so a file from elsewhere cannot run code; anything else in it is a clear error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gan_retouch.data.io import DEFAULT_LIMIT, PixelLimit, decode_file, is_image_file
from gan_retouch.errors import DataError

ARRAY_EXTENSION = ".npy"
ARRAY_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))


def is_pair_file(path: Path) -> bool:
    """True for the files a pair folder may hold: images (by extension) and ``.npy`` pixel arrays."""
    return is_image_file(path) or (path.is_file() and path.suffix.lower() == ARRAY_EXTENSION
                                   and not path.name.startswith("."))


def _bad_array(path: Path, what: str) -> DataError:
    return DataError(f"cannot read {path}: {what}; a pair folder's .npy files must hold uint8 or uint16 [C,H,W] "
                     f"pixels with 1 to 4 channels, as `gan-retouch prepare` writes them. Re-create or remove it.")


def _check_array(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
    if dtype not in ARRAY_DTYPES or len(shape) != 3 or not 1 <= shape[0] <= 4 or min(shape) < 1:
        raise _bad_array(path, f"it holds a {dtype} array of shape {tuple(shape)}")


def _header(path: Path) -> tuple[tuple[int, ...], np.dtype] | None:
    """Shape and dtype from an ``.npy`` header, or None when it has none (np.load then says why)."""
    headers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    try:
        with path.open("rb") as stream:
            read_header = headers.get(np.lib.format.read_magic(stream))
            if read_header is None:
                return None
            shape, _, dtype = read_header(stream)
    except (ValueError, OSError, EOFError):
        return None
    return tuple(shape), dtype


def read_array(path: Path, limit: PixelLimit = DEFAULT_LIMIT) -> torch.Tensor:
    """The pixels of an ``.npy`` file as a ``[C,H,W]`` uint8/uint16 tensor; its size is checked against ``limit``
    from the header, before the pixels are read."""
    header = _header(path)
    if header is not None:
        _check_array(path, *header)
        limit.check(path, header[0][2], header[0][1])
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise _bad_array(path, str(exc).strip() or type(exc).__name__) from exc
    _check_array(path, array.shape, array.dtype)
    return torch.from_numpy(np.ascontiguousarray(array))


def array_bytes(path: Path) -> int:
    """Bytes of an ``.npy`` file's pixels, from its header only (0 when unreadable: the pre-check reports it)."""
    header = _header(path)
    return 0 if header is None else int(np.prod(header[0])) * header[1].itemsize


def read_pixels(path: Path, limit: PixelLimit = DEFAULT_LIMIT) -> torch.Tensor:
    """The decoded pixels of a pair file: uint8 (uint16 for 16-bit PNG) ``[C,H,W]``, EXIF orientation applied;
    a file over ``limit`` (``data.max_pixels``) is an error from its header."""
    return read_array(path, limit) if path.suffix.lower() == ARRAY_EXTENSION else decode_file(path, limit)
