"""Reading images from disk as float RGB tensors in [0, 1], with the metadata a retouched copy should keep.

Decoding uses torchvision (libpng / libjpeg-turbo / libwebp, fast in loader workers, 16-bit PNG aware); Pillow
reads only the header for the size, ICC profile and EXIF. torchvision is imported on the first decode, not with
this module; a one-shot command (`retouch`) can decode 8-bit PNGs through Pillow instead (``png_via_pillow``:
the same pixels, lossless, without importing torchvision, which takes longer than decoding one photo).
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from gan_retouch.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
EXIF_ORIENTATION = 0x0112
TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height
_warned: set[tuple[str, str]] = set()  # (path, what) already reported in this process: warn once per file


def is_image_file(path: Path) -> bool:
    """True for the file types the datasets load (by extension, case-insensitive)."""
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _exif(header: Image.Image, path: Path) -> Image.Exif:
    """The EXIF of an opened image. For a PNG whose eXIf chunk was not read with the header, Pillow's getexif()
    decodes every pixel to look for it after the image data; the chunks are walked here instead, skipping the
    image data, which finds the same chunk without decoding (a 4K PNG took three decodes to size and read)."""
    if header.format != "PNG" or "exif" in header.info:
        return header.getexif()
    exif = Image.Exif()
    with open(path, "rb") as stream:
        stream.seek(8)  # the signature
        while len(chunk := stream.read(8)) == 8:
            length, kind = struct.unpack(">I4s", chunk)
            if kind == b"eXIf":
                exif.load(stream.read(length))
                break
            if kind == b"IEND":
                break
            stream.seek(length + 4, 1)  # the data and its CRC
    return exif


def _pillow_png(path: Path) -> torch.Tensor | None:
    """An 8-bit grey, grey+alpha, RGB or RGBA PNG as uint8 ``[C,H,W]``, upright, decoded by Pillow; None for any
    other file (16-bit or palette PNGs, other formats), which torchvision decodes."""
    try:
        with Image.open(path) as opened:
            if opened.format != "PNG" or opened.mode not in ("L", "LA", "RGB", "RGBA"):
                return None
            with open(path, "rb") as stream:
                header = stream.read(25)
            if header[24] != 8:  # the IHDR bit depth: Pillow reads 16-bit RGB PNGs as 8-bit RGB
                return None
            pixels = np.asarray(ImageOps.exif_transpose(opened))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, IndexError):
        return None  # torchvision decodes it, or reports why it cannot
    pixels = pixels[:, :, None] if pixels.ndim == 2 else pixels
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).contiguous()


def _decode(path: Path, png_via_pillow: bool = False) -> torch.Tensor:
    if png_via_pillow and (pixels := _pillow_png(path)) is not None:
        return pixels
    from torchvision.io import ImageReadMode, decode_image, read_file

    try:
        with warnings.catch_warnings():  # torchvision 0.29 flags its decoders as deprecated in favour of torchcodec
            warnings.simplefilter("ignore", DeprecationWarning)
            raw = read_file(str(path))
            return decode_image(raw, mode=ImageReadMode.UNCHANGED, apply_exif_orientation=True)
    except (RuntimeError, ValueError, OSError) as exc:
        reason = str(exc).strip().split(", ")[-1]  # torchvision prefixes its C++ source location
        raise DataError(f"cannot read image {path}: {reason}. Re-export it as PNG or JPEG, or remove it.") from exc


def _warn_once(path: Path, what: str, message: str) -> None:
    """Warn about ``path`` once per process: a training run reads the same file thousands of times."""
    key = (str(path), what)
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, stacklevel=4)


def _to_unit_rgb(pixels: torch.Tensor, path: Path) -> tuple[torch.Tensor, int]:
    """Decoded uint8/uint16 ``[C,H,W]`` -> float RGB in [0, 1] and the bit depth; warns on gray or alpha."""
    bits = 16 if pixels.dtype == torch.uint16 else 8
    scale = 65535.0 if bits == 16 else 255.0
    image = pixels.to(torch.float32).div_(scale)
    channels = image.shape[0]
    if channels in (2, 4):
        _warn_once(path, "alpha", f"{path}: alpha channel dropped (the image is used as opaque RGB)")
        image = image[: channels - 1]
    if image.shape[0] == 1:
        _warn_once(path, "gray", f"{path}: grayscale image converted to RGB")
        image = image.expand(3, -1, -1).contiguous()
    return image, bits


def read_image(path: str | Path) -> torch.Tensor:
    """An image file (PNG/JPEG/WebP, 8 or 16 bit) -> float RGB ``[3,H,W]`` in [0, 1], EXIF orientation applied."""
    path = Path(path)
    image, _ = _to_unit_rgb(_decode(path), path)
    return image


def _metadata(path: Path) -> dict[str, Any]:
    try:
        with Image.open(path) as header:
            exif = _exif(header, path)
            if exif and EXIF_ORIENTATION in exif:
                exif[EXIF_ORIENTATION] = 1  # the pixels are returned upright, so the tag must not rotate them again
            return {
                "icc_profile": header.info.get("icc_profile"),
                "exif": exif.tobytes() if exif else None,
                "format": header.format,
            }
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"cannot read image {path}: {exc}. Re-export it as PNG or JPEG, or remove it.") from exc


def read_image_with_info(path: str | Path, png_via_pillow: bool = False) -> tuple[torch.Tensor, dict[str, Any]]:
    """``read_image`` plus ``{icc_profile, exif (orientation reset to 1), format, bits}`` to carry to outputs;
    ``png_via_pillow`` decodes 8-bit PNGs through Pillow (see the module docstring)."""
    path = Path(path)
    info = _metadata(path)
    image, bits = _to_unit_rgb(_decode(path, png_via_pillow), path)
    info["bits"] = bits
    return image, info


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) after EXIF orientation, from the header only; DataError when it is not an image."""
    try:
        with Image.open(path) as header:
            width, height = header.size
            orientation = _exif(header, path).get(EXIF_ORIENTATION, 1)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from exc
    return (width, height) if orientation in TRANSPOSING_ORIENTATIONS else (height, width)


def decoded_size(path: Path) -> tuple[int, int]:
    """(height, width) after EXIF orientation from a full decode: catches corrupt data that a header hides."""
    pixels = _decode(path)
    return int(pixels.shape[-2]), int(pixels.shape[-1])


def read_mask(path: str | Path) -> torch.Tensor:
    """A mask file -> float ``[1,H,W]`` in [0, 1] (colour masks are averaged over their channels)."""
    path = Path(path)
    pixels = _decode(path)
    scale = 65535.0 if pixels.dtype == torch.uint16 else 255.0
    mask = pixels.to(torch.float32).div_(scale)
    if mask.shape[0] in (2, 4):
        mask = mask[: mask.shape[0] - 1]
    return mask.mean(dim=0, keepdim=True)
