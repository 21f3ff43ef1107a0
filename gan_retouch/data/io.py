"""Reading images from disk as float RGB tensors in [0, 1], with the metadata a retouched copy should keep.

Decoding uses torchvision (libpng / libjpeg-turbo / libwebp, fast in loader workers, 16-bit PNG aware); Pillow
reads only the header for the size, ICC profile and EXIF.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError
from torchvision.io import ImageReadMode, decode_image, read_file

from gan_retouch.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
EXIF_ORIENTATION = 0x0112
TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height
_warned: set[tuple[str, str]] = set()  # (path, what) already reported in this process: warn once per file


def is_image_file(path: Path) -> bool:
    """True for the file types the datasets load (by extension, case-insensitive)."""
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _decode(path: Path) -> torch.Tensor:
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


def decode_file(path: Path) -> torch.Tensor:
    """The pixels of an image file as decoded: uint8 (uint16 for 16-bit PNG) ``[C,H,W]``, EXIF orientation applied.

    4x smaller than float: the form the in-memory cache of decoded pairs keeps (``gan_retouch.data.cache``).
    """
    return _decode(path)


def pixels_to_image(pixels: torch.Tensor, path: Path) -> torch.Tensor:
    """Decoded pixels of ``path`` -> float RGB ``[3,H,W]`` in [0, 1] (as ``read_image`` returns them)."""
    return _to_unit_rgb(pixels, path)[0]


def read_image(path: str | Path) -> torch.Tensor:
    """An image file (PNG/JPEG/WebP, 8 or 16 bit) -> float RGB ``[3,H,W]`` in [0, 1], EXIF orientation applied."""
    path = Path(path)
    return pixels_to_image(_decode(path), path)


def _metadata(path: Path) -> dict[str, Any]:
    try:
        with Image.open(path) as header:
            exif = header.getexif()
            if exif and EXIF_ORIENTATION in exif:
                exif[EXIF_ORIENTATION] = 1  # the pixels are returned upright, so the tag must not rotate them again
            return {
                "icc_profile": header.info.get("icc_profile"),
                "exif": exif.tobytes() if exif else None,
                "format": header.format,
            }
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"cannot read image {path}: {exc}. Re-export it as PNG or JPEG, or remove it.") from exc


def read_image_with_info(path: str | Path) -> tuple[torch.Tensor, dict[str, Any]]:
    """``read_image`` plus ``{icc_profile, exif (orientation reset to 1), format, bits}`` to carry to outputs."""
    path = Path(path)
    info = _metadata(path)
    image, bits = _to_unit_rgb(_decode(path), path)
    info["bits"] = bits
    return image, info


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) after EXIF orientation, from the header only; DataError when it is not an image."""
    try:
        with Image.open(path) as header:
            width, height = header.size
            orientation = header.getexif().get(EXIF_ORIENTATION, 1)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from exc
    return (width, height) if orientation in TRANSPOSING_ORIENTATIONS else (height, width)


def read_mask(path: str | Path) -> torch.Tensor:
    """A mask file -> float ``[1,H,W]`` in [0, 1] (colour masks are averaged over their channels)."""
    return pixels_to_mask(_decode(Path(path)))


def pixels_to_mask(pixels: torch.Tensor) -> torch.Tensor:
    """Decoded mask pixels -> float ``[1,H,W]`` in [0, 1] (colour masks are averaged over their channels)."""
    scale = 65535.0 if pixels.dtype == torch.uint16 else 255.0
    mask = pixels.to(torch.float32).div_(scale)
    if mask.shape[0] in (2, 4):
        mask = mask[: mask.shape[0] - 1]
    return mask.mean(dim=0, keepdim=True)
