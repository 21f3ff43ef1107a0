"""LPIPS of a full-resolution pair, its AlexNet run on bands of rows instead of on the whole photo.

LPIPS (spatial average) is the sum over five feature layers of the mean of a per-position map. A band of rows
starting on a multiple of 16 (AlexNet's largest stride) with ``HALO`` more rows above and below gives, for
every map row whose input position lies in the band's own rows, the whole image's value: a row of the deepest
layer sees 66 input rows above and 96 below it, and the band's zero padding lies beyond them. So the maps'
sums over bands are the whole image's, and so is LPIPS, up to float rounding (convolutions of different sizes
may sum in another order).
"""

from __future__ import annotations

import torch

from gan_retouch.evaluate.bands import Pixels, bands

STRIDES = (4, 8, 16, 16, 16)  # input pixels per map position of AlexNet's five LPIPS layers
HALO = 96  # rows above and below a band (a multiple of 16, at least the deepest layer's reach)
BAND_ROWS = 128  # own rows of a band at least, so that the halo rows are not most of the work


def _layer_maps(model: torch.nn.Module, a: torch.Tensor, b: torch.Tensor) -> list[torch.Tensor]:
    """The five per-position LPIPS maps ``[h_l, W_l]`` of a band (lpips.LPIPS.forward before its average)."""
    import lpips

    inputs = [model.scaling_layer(2 * x - 1) for x in (a, b)]
    features = [model.net.forward(x) for x in inputs]
    maps = []
    for index, (f0, f1) in enumerate(zip(features[0], features[1], strict=True)):
        difference = (lpips.normalize_tensor(f0) - lpips.normalize_tensor(f1)) ** 2
        maps.append(model.lins[index](difference)[0, 0])
    return maps


@torch.no_grad()
def banded_lpips(distance: torch.nn.Module, output: Pixels, target: Pixels) -> float:
    """LPIPS (``losses.pretrained.LPIPSDistance``, AlexNet) of ``output`` against ``target``, band by band."""
    model = getattr(distance, "model", None)
    if getattr(model, "pnet_type", None) != "alex" or not getattr(model, "lpips", False):
        raise ValueError("banded LPIPS takes the AlexNet LPIPS of losses.pretrained.build_lpips('alex')")
    device = next(model.parameters()).device
    height, width = output.height, output.width
    totals = [0.0] * len(STRIDES)
    counts = [0] * len(STRIDES)
    for top, bottom in bands(height, width, 16, least=BAND_ROWS):
        start, end = max(0, top - HALO), min(height, bottom + HALO)
        maps = _layer_maps(model, output.rows(start, end).to(device), target.rows(start, end).to(device))
        for layer, (stride, values) in enumerate(zip(STRIDES, maps, strict=True)):
            first = top // stride - start // stride
            last = values.shape[0] if bottom == height else bottom // stride - start // stride
            own = values[first:last]
            totals[layer] += float(own.sum(dtype=torch.float64))
            counts[layer] += own.numel()
    return sum(total / count for total, count in zip(totals, counts, strict=True))
