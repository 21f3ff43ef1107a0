"""Reading images from disk as float RGB tensors in [0, 1], with the metadata a retouched copy should keep.

Every read first opens the header with Pillow (size, mode, ICC profile, EXIF) and refuses an image with more
pixels than its ``PixelLimit`` before a single pixel is decoded: a small PNG can hold a 20000x20000 image
(a "decompression bomb") that would take tens of GB. Decoding then uses torchvision (libpng / libjpeg-turbo /
libwebp, fast in loader workers, 16-bit PNG aware), except palette images, which Pillow converts to RGB(A):
torchvision would return their palette indices as grey levels. torchvision is imported on its first decode, not
with this module; a one-shot command (`retouch`) decodes 8-bit PNGs through Pillow instead (``png_via_pillow``:
the same pixels, lossless, without importing torchvision, which takes longer than decoding one photo). A PNG's
EXIF is found by walking its chunks: Pillow's getexif() decodes every pixel of a PNG to look past its image data.
"""

from __future__ import annotations

import contextlib
import io
import struct
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from gan_retouch.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
EXIF_ORIENTATION = 0x0112
TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height
PALETTE_MODES = ("P", "PA")  # decoded through Pillow: torchvision returns the palette indices
PILLOW_PNG_MODES = ("L", "LA", "RGB", "RGBA")  # 8-bit PNGs Pillow decodes exactly as torchvision (png_via_pillow)
DEFAULT_MAX_PIXELS = 200_000_000  # a 150 MP medium-format frame fits; 8K (33 MP) with room to spare
HEADER_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError)
_pillow_limit = threading.Lock()  # guards the moment Pillow's own limit is lifted for our header check
_warned: set[tuple[str, str]] = set()  # (path, what) already reported in this process: warn once per file


@dataclass(frozen=True)
class PixelLimit:
    """The most pixels (width x height) an image may have before it is decoded, and the option that sets it."""

    pixels: int = DEFAULT_MAX_PIXELS
    option: str = "data.max_pixels"

    def check(self, path: Path, width: int, height: int) -> None:
        """A DataError naming the file, its size and the option when the image is over the limit."""
        if width * height > self.pixels:
            raise DataError(
                f"{path} is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels), over the limit of "
                f"{self.pixels / 1e6:g} megapixels ({self.option}); it was not decoded (a small file can hide a "
                f"huge image). Raise {self.option} if the image is genuine, or remove it."
            )


DEFAULT_LIMIT = PixelLimit()


def data_limit(data: dict[str, Any]) -> PixelLimit:
    """The ``data.max_pixels`` limit of resolved data options (the default for options saved before it existed)."""
    return PixelLimit(int(data.get("max_pixels") or DEFAULT_MAX_PIXELS), "data.max_pixels")


def is_image_file(path: Path) -> bool:
    """True for the file types the datasets load (by extension, case-insensitive)."""
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _unreadable(path: Path, reason: Any) -> DataError:
    return DataError(f"cannot read image {path}: {reason}. Re-export it as PNG or JPEG, or remove it.")


@contextlib.contextmanager
def open_image(path: Path, limit: PixelLimit, data: bytes | None = None) -> Iterator[Image.Image]:
    """Pillow's lazy open of ``path`` (or of its bytes ``data``): the header only, checked against ``limit``.

    Pillow's own decompression-bomb check (a warning above 89 MP, an error above 179 MP) is lifted while the
    header is read, so ``limit`` alone decides, with a message that names the file and the option.
    """
    with _pillow_limit:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            opened = Image.open(io.BytesIO(data) if data is not None else path)
        except UnidentifiedImageError as exc:
            raise _unreadable(path, "not a PNG, JPEG or WebP image, or a damaged one") from exc
        except HEADER_ERRORS as exc:
            raise _unreadable(path, exc) from exc
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    with opened:
        limit.check(path, *opened.size)
        yield opened


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, exc.strerror or exc) from exc


def _pillow_pixels(opened: Image.Image, path: Path) -> torch.Tensor:
    """uint8 ``[C,H,W]``, upright, through Pillow: a palette image as RGB (RGBA with transparency), an 8-bit
    PNG with its own channels (grey, grey + alpha, RGB, RGBA), as torchvision returns them."""
    try:
        upright = ImageOps.exif_transpose(opened)
        if opened.mode in PALETTE_MODES:
            alpha = opened.mode == "PA" or "transparency" in opened.info
            upright = upright.convert("RGBA" if alpha else "RGB")
        array = np.asarray(upright)
    except HEADER_ERRORS as exc:
        raise _unreadable(path, exc) from exc
    array = array[:, :, None] if array.ndim == 2 else array
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def _torchvision_pixels(data: bytes, path: Path) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_image  # imported here: it takes a second or more

    try:
        with warnings.catch_warnings():  # torchvision 0.29 flags its decoders as deprecated in favour of torchcodec
            warnings.simplefilter("ignore", DeprecationWarning)
            raw = torch.frombuffer(bytearray(data), dtype=torch.uint8)
            return decode_image(raw, mode=ImageReadMode.UNCHANGED, apply_exif_orientation=True)
    except (RuntimeError, ValueError, OSError) as exc:
        reason = str(exc).strip().split(", ")[-1]  # torchvision prefixes its C++ source location
        raise _unreadable(path, reason) from exc


def _exif(opened: Image.Image, path: Path, data: bytes | None = None) -> Image.Exif:
    """The EXIF of an opened image. For a PNG whose eXIf chunk was not read with the header, Pillow's getexif()
    decodes every pixel to look for it after the image data; its chunks are walked here instead, skipping the
    image data, which finds the same chunk without decoding (sizing and reading a 4K PNG decoded it three times)."""
    if opened.format != "PNG" or "exif" in opened.info:
        return opened.getexif()
    exif = Image.Exif()
    with contextlib.ExitStack() as stack:
        stream = io.BytesIO(data) if data is not None else stack.enter_context(path.open("rb"))
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


def _header_info(opened: Image.Image, path: Path, data: bytes) -> dict[str, Any]:
    exif = _exif(opened, path, data)
    if exif and EXIF_ORIENTATION in exif:
        exif[EXIF_ORIENTATION] = 1  # the pixels are returned upright, so the tag must not rotate them again
    return {"icc_profile": opened.info.get("icc_profile"), "exif": exif.tobytes() if exif else None,
            "format": opened.format}


def _decode(path: Path, limit: PixelLimit, with_info: bool = False,
            png_via_pillow: bool = False) -> tuple[torch.Tensor, dict[str, Any]]:
    """Decoded uint8/uint16 ``[C,H,W]`` pixels, upright, and (``with_info``) the header's metadata;
    ``png_via_pillow`` decodes 8-bit PNGs through Pillow (see the module docstring)."""
    data = _read_bytes(path)
    with open_image(path, limit, data) as header:
        eight_bit_png = header.format == "PNG" and header.mode in PILLOW_PNG_MODES and data[24:25] == b"\x08"
        pillow = header.mode in PALETTE_MODES or (png_via_pillow and eight_bit_png)  # byte 24: the IHDR bit depth
        pixels = _pillow_pixels(header, path) if pillow else None  # before the info resets the orientation tag
        try:
            info = _header_info(header, path, data) if with_info else {}
        except HEADER_ERRORS as exc:
            raise _unreadable(path, exc) from exc
    return (pixels if pixels is not None else _torchvision_pixels(data, path)), info


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


def decode_file(path: Path, limit: PixelLimit = DEFAULT_LIMIT) -> torch.Tensor:
    """The pixels of an image file as decoded: uint8 (uint16 for 16-bit PNG) ``[C,H,W]``, EXIF orientation applied.

    4x smaller than float: the form the in-memory cache of decoded pairs keeps (``gan_retouch.data.cache``).
    """
    return _decode(path, limit)[0]


def pixels_to_image(pixels: torch.Tensor, path: Path) -> torch.Tensor:
    """Decoded pixels of ``path`` -> float RGB ``[3,H,W]`` in [0, 1] (as ``read_image`` returns them)."""
    return _to_unit_rgb(pixels, path)[0]


def read_image(path: str | Path, limit: PixelLimit = DEFAULT_LIMIT) -> torch.Tensor:
    """An image file (PNG/JPEG/WebP, 8 or 16 bit) -> float RGB ``[3,H,W]`` in [0, 1], EXIF orientation applied."""
    path = Path(path)
    return pixels_to_image(_decode(path, limit)[0], path)


def read_image_with_info(path: str | Path, limit: PixelLimit = DEFAULT_LIMIT,
                         png_via_pillow: bool = False) -> tuple[torch.Tensor, dict[str, Any]]:
    """``read_image`` plus ``{icc_profile, exif (orientation reset to 1), format, bits}`` to carry to outputs;
    ``png_via_pillow`` decodes 8-bit PNGs through Pillow (see the module docstring)."""
    path = Path(path)
    pixels, info = _decode(path, limit, with_info=True, png_via_pillow=png_via_pillow)
    image, info["bits"] = _to_unit_rgb(pixels, path)
    return image, info


def read_pixels_with_info(path: str | Path, limit: PixelLimit = DEFAULT_LIMIT,
                          png_via_pillow: bool = False) -> tuple[torch.Tensor, dict[str, Any]]:
    """``read_image_with_info`` without the float conversion: RGB ``[3,H,W]`` uint8 (uint16 for 16-bit PNGs),
    gray expanded and alpha dropped as there, and the same info."""
    path = Path(path)
    pixels, info = _decode(path, limit, with_info=True, png_via_pillow=png_via_pillow)
    info["bits"] = 16 if pixels.dtype == torch.uint16 else 8
    if pixels.shape[0] in (2, 4):
        _warn_once(path, "alpha", f"{path}: alpha channel dropped (the image is used as opaque RGB)")
        pixels = pixels[: pixels.shape[0] - 1]
    if pixels.shape[0] == 1:
        _warn_once(path, "gray", f"{path}: grayscale image converted to RGB")
        pixels = pixels.expand(3, -1, -1)
    return pixels.contiguous(), info


def image_size(path: Path, limit: PixelLimit = DEFAULT_LIMIT) -> tuple[int, int]:
    """(height, width) after EXIF orientation, from the header only; DataError when it is not an image or is
    over ``limit``."""
    with open_image(path, limit) as header:
        width, height = header.size
        try:
            orientation = _exif(header, path).get(EXIF_ORIENTATION, 1)
        except HEADER_ERRORS as exc:
            raise _unreadable(path, exc) from exc
    return (width, height) if orientation in TRANSPOSING_ORIENTATIONS else (height, width)


def read_mask(path: str | Path, limit: PixelLimit = DEFAULT_LIMIT) -> torch.Tensor:
    """A mask file -> float ``[1,H,W]`` in [0, 1] (colour masks are averaged over their channels)."""
    return pixels_to_mask(_decode(Path(path), limit)[0])


def pixels_to_mask(pixels: torch.Tensor) -> torch.Tensor:
    """Decoded mask pixels -> float ``[1,H,W]`` in [0, 1] (colour masks are averaged over their channels)."""
    scale = 65535.0 if pixels.dtype == torch.uint16 else 255.0
    mask = pixels.to(torch.float32).div_(scale)
    if mask.shape[0] in (2, 4):
        mask = mask[: mask.shape[0] - 1]
    return mask.mean(dim=0, keepdim=True)
