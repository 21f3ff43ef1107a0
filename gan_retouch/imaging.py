"""Value ranges and tensor <-> image conversion, decided here once.

Between packages, images are float RGB tensors in [0, 1]. Networks that work in [-1, 1] convert with
``to_signed`` / ``to_unit`` at their own boundary.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

UNIT = (0.0, 1.0)
SIGNED = (-1.0, 1.0)


def to_signed(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1] (x * 2 - 1, the pix2pix convention for tanh generators)."""
    return x * 2.0 - 1.0


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1]."""
    return (x + 1.0) * 0.5


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Values in [0, 1] -> uint8 0..255, clamped and rounded (on the tensor's device): the one rounding of 8-bit
    outputs."""
    return (x.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8)


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """A ``[3,H,W]`` or ``[1,H,W]`` tensor in [0, 1] (or uint8 from ``to_uint8``) -> an 8-bit PIL image."""
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(f"tensor_to_pil takes one image, got a batch of {x.shape[0]}")
        x = x[0]
    array = (x if x.dtype == torch.uint8 else to_uint8(x)).detach().cpu()
    if array.shape[0] == 1:
        return Image.fromarray(array[0].numpy(), mode="L")
    return Image.fromarray(array.permute(1, 2, 0).contiguous().numpy(), mode="RGB")


def save_image(x: torch.Tensor, path: str | Path) -> None:
    """Write a tensor in [0, 1] as an 8-bit image; the extension picks the format."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensor_to_pil(x).save(path)


def image_row(images: list[torch.Tensor], gap: int = 4) -> torch.Tensor:
    """Place ``[3,H,W]`` images side by side with a white gap (input | output | target grids)."""
    height = max(im.shape[-2] for im in images)
    pieces = []
    for index, im in enumerate(images):
        if im.shape[0] == 1:
            im = im.expand(3, -1, -1)
        padded = torch.ones(3, height, im.shape[-1], dtype=im.dtype)
        padded[:, : im.shape[-2]] = im.cpu()
        pieces.append(padded)
        if index < len(images) - 1:
            pieces.append(torch.ones(3, height, gap, dtype=im.dtype))
    return torch.cat(pieces, dim=2)


def image_grid(rows: list[list[torch.Tensor]], gap: int = 4) -> torch.Tensor:
    """Stack rows made by ``image_row`` vertically, with a white gap between them."""
    made = [image_row(row, gap) for row in rows]
    width = max(r.shape[-1] for r in made)
    pieces = []
    for index, row in enumerate(made):
        padded = torch.ones(3, row.shape[-2], width, dtype=row.dtype)
        padded[:, :, : row.shape[-1]] = row
        pieces.append(padded)
        if index < len(made) - 1:
            pieces.append(torch.ones(3, gap, width, dtype=row.dtype))
    return torch.cat(pieces, dim=1)
