"""Mask-aware weighting of pixel losses, and the segmentation terms of a mask head (``mask_bce``, ``dice``).

Where did the retoucher edit? ``defect_map`` answers per pixel, from one of three sources:

- ``given``: the data's defect mask;
- ``hard``: 1 where max over channels of |input - target| > ``threshold`` (30/255 by default; the brief's
  blemish rule, which selects almost nothing on real, subtle retouching);
- ``soft``: ``clamp(smooth(max_c |input - target|) / threshold, 0, 1)`` with a 3x3 mean as ``smooth`` and
  ``threshold`` 4/255 by default: a pixel (region) changed by 4 levels or more counts fully, 2 levels half,
  unchanged pixels not at all. It keeps working when real retouching moves pixels by only a few levels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gan_retouch.errors import ConfigError
from gan_retouch.losses.base import LossContext, LossTerm
from gan_retouch.registry import LOSSES, choice
from gan_retouch.values import is_number

MASK_SOURCES = ("none", "given", "hard", "soft")
HARD_THRESHOLD = 30 / 255  # the brief's "blemish" pixels: input and target differ by more than this
SOFT_THRESHOLD = 4 / 255  # a change of this size (after 3x3 smoothing) gets the full weight
DEFAULT_THRESHOLDS = {"hard": HARD_THRESHOLD, "soft": SOFT_THRESHOLD}


def hard_example_mask(input: torch.Tensor, target: torch.Tensor, threshold: float = HARD_THRESHOLD) -> torch.Tensor:
    """``[N,1,H,W]``: 1 where the largest per-channel |input - target| exceeds ``threshold``."""
    return ((input - target).abs().amax(dim=1, keepdim=True) > threshold).to(input.dtype)


def soft_example_mask(input: torch.Tensor, target: torch.Tensor, threshold: float = SOFT_THRESHOLD) -> torch.Tensor:
    """``[N,1,H,W]`` in [0, 1]: the 3x3-smoothed largest per-channel |input - target|, divided by ``threshold``."""
    change = (input - target).abs().amax(dim=1, keepdim=True)
    smooth = F.avg_pool2d(change, 3, stride=1, padding=1, count_include_pad=False)
    return (smooth / threshold).clamp(0.0, 1.0).to(input.dtype)


def check_threshold(term: str, source: str, threshold: float | None) -> float:
    """The threshold to use for ``source`` (``None`` = its default), or a ConfigError naming the term."""
    if threshold is None:
        return DEFAULT_THRESHOLDS.get(source, HARD_THRESHOLD)
    if not is_number(threshold) or not 0.0 <= threshold < 1.0:
        raise ConfigError(
            f"{term}: threshold is a difference in [0, 1) (e.g. 4/255 = 0.0157 for soft, 30/255 = 0.118 for hard), "
            f"got {threshold!r}"
        )
    if source == "soft" and threshold == 0.0:
        raise ConfigError(f"{term}: a soft mask needs threshold > 0 (e.g. 4/255 = 0.0157), got 0")
    return float(threshold)


def defect_map(source: str, threshold: float, ctx: LossContext, term: str) -> torch.Tensor:
    """``[N,1,H,W]`` in [0, 1]: where the target differs from the input, per ``source`` (given | hard | soft)."""
    if source == "given":
        return ctx.need("mask", f"{term} (mask: given)").to(ctx.output.dtype)
    if source == "hard":
        return hard_example_mask(ctx.input, ctx.target, threshold)
    return soft_example_mask(ctx.input, ctx.target, threshold)


class MaskWeighting:
    """Per-pixel weights from a defect map: ``mask_weight`` inside, ``outside_weight`` outside (soft maps blend).

    ``mask``: none (plain loss) | given | hard | soft (see ``defect_map``). ``outside_weight: 0`` restricts a
    loss to the mask; ``mask_weight: 10`` up-weights the edited pixels. ``threshold: None`` = the source's default.
    """

    def __init__(
        self, term: str, mask: str, mask_weight: float, outside_weight: float, threshold: float | None
    ) -> None:
        self.term = term
        self.source = choice(mask, MASK_SOURCES, f"{term} mask")
        if mask_weight < 0 or outside_weight < 0 or mask_weight + outside_weight == 0:
            raise ConfigError(
                f"{term}: mask_weight and outside_weight must be >= 0 and not both 0, got {mask_weight} and "
                f"{outside_weight}"
            )
        self.threshold = check_threshold(term, self.source, threshold)
        self.mask_weight, self.outside_weight = mask_weight, outside_weight

    @property
    def active(self) -> bool:
        return self.source != "none" and self.mask_weight != self.outside_weight

    def weights(self, ctx: LossContext) -> torch.Tensor | None:
        """``[N,1,H,W]`` weights, or None for a plain (unweighted) loss."""
        if not self.active:
            return None
        mask = defect_map(self.source, self.threshold, ctx, self.term)
        return self.outside_weight + (self.mask_weight - self.outside_weight) * mask

    def reduce(self, loss_map: torch.Tensor, ctx: LossContext) -> torch.Tensor:
        """The weighted mean of a per-pixel loss map ``[N,C,H,W]`` (plain mean when unweighted)."""
        weights = self.weights(ctx)
        if weights is None:
            return loss_map.mean()
        weights = weights.expand_as(loss_map)
        return (weights * loss_map).sum() / weights.sum().clamp_min(1e-12)


@LOSSES.register("mask_bce")
class MaskBCE(LossTerm):
    """Per-pixel binary cross-entropy of a mask head's logits against the data's mask (weight 0.5 in recipes)."""

    reads_pred_mask = True

    def forward(self, ctx: LossContext) -> torch.Tensor:
        logits = ctx.need("pred_mask", "mask_bce")
        return F.binary_cross_entropy_with_logits(logits, ctx.need("mask", "mask_bce").to(logits.dtype))


def dice_coefficient(probabilities: torch.Tensor, mask: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Per-image Dice ``(2 |P.M| + s) / (|P| + |M| + s)`` of soft masks ``[N,1,H,W]``, shape ``[N]``."""
    dims = tuple(range(1, probabilities.dim()))
    overlap = (probabilities * mask).sum(dims)
    return (2 * overlap + smooth) / (probabilities.sum(dims) + mask.sum(dims) + smooth)


@LOSSES.register("dice")
class DiceLoss(LossTerm):
    """1 - soft Dice of sigmoid(mask logits) vs the data's mask, per image then averaged (weight 0.5 in recipes).

    ``smooth`` (default 1) keeps empty masks finite: an empty prediction of an empty mask scores 0 loss.
    """

    reads_pred_mask = True

    def __init__(self, smooth: float = 1.0) -> None:
        super().__init__()
        if smooth < 0:
            raise ConfigError(f"dice smooth must be >= 0, got {smooth}")
        self.smooth = smooth

    def forward(self, ctx: LossContext) -> torch.Tensor:
        logits = ctx.need("pred_mask", "dice")
        mask = ctx.need("mask", "dice").to(logits.dtype)
        return (1.0 - dice_coefficient(torch.sigmoid(logits), mask, self.smooth)).mean()
