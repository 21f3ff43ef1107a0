"""Reading and writing the photos `retouch` works on: alpha channels, 16-bit PNGs, ICC profiles and EXIF.

The RGB pixels come from ``data.read_image_with_info`` (upright, 8 or 16 bit); this module adds what a photo
carries besides them. The alpha channel of an RGBA / LA / transparent-palette input is copied unchanged to the
output (formats that cannot store it, JPEG, drop it and the caller says so).
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image, ImageOps

from gan_retouch.errors import DataError
from gan_retouch.imaging import tensor_to_pil, to_uint8

if TYPE_CHECKING:
    from gan_retouch.data.io import PixelLimit

FORMATS = {"png": ("PNG", ".png"), "jpg": ("JPEG", ".jpg"), "jpeg": ("JPEG", ".jpg"), "webp": ("WEBP", ".webp")}
ALPHA_FORMATS = ("PNG", "WEBP")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_photo(path: Path, limit: PixelLimit) -> tuple[torch.Tensor, dict[str, Any]]:
    """``[3,H,W]`` RGB in [0, 1] and its info (``icc_profile``, ``exif``, ``bits``, ``alpha`` = ``[1,H,W]`` in
    [0, 1] or None), upright; an image over ``limit`` pixels is a DataError before it is decoded. The reader's
    "alpha channel dropped" warning is silenced: the alpha is kept. 8-bit PNGs are decoded by Pillow (the same
    pixels, without importing torchvision: a fast start)."""
    pixels, info = read_pixels(path, limit)
    return pixels.to(torch.float32).div_(65535.0 if info["bits"] == 16 else 255.0), info


def read_pixels(path: Path, limit: PixelLimit) -> tuple[torch.Tensor, dict[str, Any]]:
    """``read_photo`` before the float conversion: the decoded RGB pixels, uint8 (uint16 for 16-bit PNGs)
    ``[3,H,W]``, upright, a quarter of the bytes to move to a GPU; the same info (``bits``, ``alpha``, ...)."""
    from gan_retouch.data.io import read_pixels_with_info

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*alpha channel dropped.*")
        pixels, info = read_pixels_with_info(path, limit, png_via_pillow=True)
    info["alpha"] = read_alpha(path, limit)
    return pixels, info


def read_alpha(path: Path, limit: PixelLimit) -> torch.Tensor | None:
    """The upright alpha channel ``[1,H,W]`` in [0, 1] of an image that has one, else None."""
    from gan_retouch.data.io import HEADER_ERRORS, open_image

    with open_image(path, limit) as opened:
        if "A" not in opened.getbands() and "transparency" not in opened.info:
            return None
        try:
            upright = ImageOps.exif_transpose(opened)
            rgba = upright if upright.mode in ("RGBA", "LA") else upright.convert("RGBA")
            alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
        except HEADER_ERRORS as exc:
            raise DataError(f"cannot read the alpha channel of {path}: {exc}. Re-export it, or remove it.") from exc
    return torch.from_numpy(alpha)[None]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def deflate(data: bytes, level: int, workers: int | None = None) -> bytes:
    """The zlib stream of ``data`` at ``level``, deflated in pieces on ``workers`` threads at once (as pigz does;
    default: the usable cores, at most 8). Each piece but the last ends on a byte boundary (a sync flush), so the
    pieces join into one valid stream; the header and the Adler-32 checksum cover the whole data. zlib releases
    the GIL while it deflates, and a 4K photo is written about twice as fast on 2 cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = workers or min(8, cores)
    if workers <= 1 or len(data) < (1 << 20):
        return zlib.compress(data, level)
    view, size = memoryview(data), -(-len(data) // workers)
    count = -(-len(data) // size)

    def piece(index: int) -> bytes:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15)  # raw deflate: the header and checksum come once
        end = zlib.Z_FINISH if index == count - 1 else zlib.Z_SYNC_FLUSH
        return compressor.compress(view[index * size : (index + 1) * size]) + compressor.flush(end)

    with ThreadPoolExecutor(workers) as pool:
        pieces = list(pool.map(piece, range(count)))
    return b"\x78\x9c" + b"".join(pieces) + struct.pack(">I", zlib.adler32(data))


def encode_png(image: torch.Tensor, icc_profile: bytes | None, exif: bytes | None, alpha: torch.Tensor | None = None,
               compression: int = 6, bits: int = 8) -> bytes:
    """An 8- or 16-bit RGB (RGBA with ``alpha``) PNG of ``image`` ([3,H,W] in [0, 1]) with iCCP and eXIf chunks.

    Written here rather than by Pillow, which stores no 16-bit RGB and filters every row five ways: each row is
    Sub-filtered (the difference to the pixel on its left, which photos compress well after) and the rows are
    deflated at zlib level ``compression``. A 4K photo is written about twice as fast as by Pillow at the same
    level, in a file of the same size; the pixels are rounded as ``imaging.tensor_to_pil`` rounds them."""
    height, width = image.shape[-2:]
    if image.dtype == torch.uint8 and bits == 8:  # rounded already (imaging.to_uint8)
        planes = image if alpha is None else torch.cat([image, to_uint8(alpha)])
        pixels = planes.permute(1, 2, 0).cpu().numpy()
    else:
        planes = image.float() if alpha is None else torch.cat([image.float(), alpha.float()])
        pixels = (planes.detach().clamp(0, 1) * (65535.0 if bits == 16 else 255.0)).round()
        pixels = pixels.permute(1, 2, 0).cpu().numpy().astype(">u2" if bits == 16 else np.uint8)
    channels = planes.shape[0]
    rows = pixels.reshape(height, width * channels).view(np.uint8)
    step = channels * bits // 8  # bytes per pixel: Sub takes the same byte of the pixel on the left
    filtered = rows.copy()
    filtered[:, step:] -= rows[:, :-step]  # modulo 256, as the PNG filter is defined
    scanlines = np.hstack([np.ones((height, 1), dtype=np.uint8), filtered])  # filter type 1 (Sub) on every row
    color_type = 2 if alpha is None else 6
    parts = [PNG_SIGNATURE, png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bits, color_type, 0, 0, 0))]
    if icc_profile:
        parts.append(png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc_profile)))
    if exif:
        parts.append(png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
    parts += [png_chunk(b"IDAT", deflate(scanlines.tobytes(), compression)), png_chunk(b"IEND", b"")]
    return b"".join(parts)


def encode_image(image: torch.Tensor, info: dict[str, Any], extension: str, quality: int,
                 png_compression: int = 6) -> bytes:
    """The file bytes for ``image`` in the format of ``extension``, carrying ICC profile, EXIF and the alpha
    channel (``info['alpha']``) where the format stores one; PNGs deflated at level ``png_compression`` (0-9:
    lossless either way, higher = smaller and slower)."""
    pil_format = FORMATS[extension.lstrip(".")][0]
    alpha = info.get("alpha") if pil_format in ALPHA_FORMATS else None
    if pil_format == "PNG":
        bits = 16 if info.get("bits") == 16 else 8
        return encode_png(image, info.get("icc_profile"), info.get("exif"), alpha, png_compression, bits)
    extras: dict[str, Any] = {}
    if info.get("icc_profile"):
        extras["icc_profile"] = info["icc_profile"]
    if info.get("exif"):
        extras["exif"] = info["exif"]
    if pil_format in ("JPEG", "WEBP"):
        extras["quality"] = quality
    picture = tensor_to_pil(image)
    if alpha is not None:
        picture.putalpha(Image.fromarray(to_uint8(alpha[0]).cpu().numpy()))
    buffer = io.BytesIO()
    picture.save(buffer, format=pil_format, **extras)
    return buffer.getvalue()
