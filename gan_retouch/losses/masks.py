"""Mask-aware weighting of pixel losses, and the segmentation terms of a mask head (``mask_bce``, ``dice``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gan_retouch.errors import ConfigError
from gan_retouch.losses.base import LossContext, LossTerm
from gan_retouch.registry import LOSSES, choice

MASK_SOURCES = ("none", "given", "hard")
HARD_THRESHOLD = 30 / 255  # the brief's "blemish" pixels: input and target differ by more than this


def hard_example_mask(input: torch.Tensor, target: torch.Tensor, threshold: float = HARD_THRESHOLD) -> torch.Tensor:
    """``[N,1,H,W]``: 1 where the largest per-channel |input - target| exceeds ``threshold``."""
    return ((input - target).abs().amax(dim=1, keepdim=True) > threshold).to(input.dtype)


class MaskWeighting:
    """Per-pixel weights from a mask: ``mask_weight`` inside, ``outside_weight`` outside.

    ``mask``: none (plain loss) | given (the data's ``mask``) | hard (|input - target| > ``threshold``).
    ``outside_weight: 0`` restricts a loss to the mask; ``mask_weight: 10`` up-weights the defect pixels.
    """

    def __init__(self, term: str, mask: str, mask_weight: float, outside_weight: float, threshold: float) -> None:
        self.term = term
        self.source = choice(mask, MASK_SOURCES, f"{term} mask")
        if mask_weight < 0 or outside_weight < 0 or mask_weight + outside_weight == 0:
            raise ConfigError(
                f"{term}: mask_weight and outside_weight must be >= 0 and not both 0, got {mask_weight} and "
                f"{outside_weight}"
            )
        if not 0.0 <= threshold < 1.0:
            raise ConfigError(f"{term}: threshold is a difference in [0, 1) (e.g. 30/255 = 0.118), got {threshold}")
        self.mask_weight, self.outside_weight, self.threshold = mask_weight, outside_weight, threshold

    @property
    def active(self) -> bool:
        return self.source != "none" and self.mask_weight != self.outside_weight

    def weights(self, ctx: LossContext) -> torch.Tensor | None:
        """``[N,1,H,W]`` weights, or None for a plain (unweighted) loss."""
        if not self.active:
            return None
        if self.source == "given":
            mask = ctx.need("mask", f"{self.term} (mask: given)").to(ctx.output.dtype)
        else:
            mask = hard_example_mask(ctx.input, ctx.target, self.threshold)
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

    def __init__(self, smooth: float = 1.0) -> None:
        super().__init__()
        if smooth < 0:
            raise ConfigError(f"dice smooth must be >= 0, got {smooth}")
        self.smooth = smooth

    def forward(self, ctx: LossContext) -> torch.Tensor:
        logits = ctx.need("pred_mask", "dice")
        mask = ctx.need("mask", "dice").to(logits.dtype)
        return (1.0 - dice_coefficient(torch.sigmoid(logits), mask, self.smooth)).mean()
