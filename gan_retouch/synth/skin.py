"""A simple colour-space skin detector (YCbCr box rule), to put synthetic defects on users' clean photos."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

# The classic chroma box for skin (Chai & Ngan, 1999), in 8-bit YCbCr units.
CB_RANGE = (77.0, 127.0)
CR_RANGE = (133.0, 173.0)
MIN_LUMA = 40.0  # very dark pixels have unreliable chroma


def detect_skin(image: torch.Tensor) -> torch.Tensor:
    """``[3,H,W]`` RGB in [0, 1] -> a ``[1,H,W]`` skin mask in [0, 1] (cleaned of specks, softened edges)."""
    r, g, b = (image * 255.0).unbind(0)
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b
    skin = (
        (cb >= CB_RANGE[0]) & (cb <= CB_RANGE[1]) & (cr >= CR_RANGE[0]) & (cr <= CR_RANGE[1]) & (luma >= MIN_LUMA)
    ).float()[None, None]
    radius = max(1, min(image.shape[-2:]) // 256)
    kernel = 2 * radius + 1
    closed = -F.max_pool2d(-F.max_pool2d(skin, kernel, 1, radius), kernel, 1, radius)  # fill small holes
    opened = F.max_pool2d(-F.max_pool2d(-closed, kernel, 1, radius), kernel, 1, radius)  # drop isolated specks
    return gaussian_blur(opened, [kernel, kernel])[0].clamp(0.0, 1.0)
