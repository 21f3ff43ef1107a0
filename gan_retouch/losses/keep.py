"""Do-no-harm terms: ``keep`` holds the pixels a retoucher left alone at the input, ``edit_map`` teaches an
edit-mask generator where to edit (its ``pred_mask`` logits against where the target differs from the input)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gan_retouch.losses.base import LossContext, LossTerm
from gan_retouch.losses.masks import check_threshold, defect_map
from gan_retouch.registry import LOSSES, choice

MAP_SOURCES = ("given", "hard", "soft")


class DefectMapTerm(LossTerm):
    """Base of the terms that read a defect map: ``mask`` (given | hard | soft) and its ``threshold``."""

    name = "defect map"

    def __init__(self, mask: str = "soft", threshold: float | None = None) -> None:
        super().__init__()
        self.source = choice(mask, MAP_SOURCES, f"{self.name} mask")
        self.threshold = check_threshold(self.name, self.source, threshold)

    def defects(self, ctx: LossContext) -> torch.Tensor:
        """``[N,1,H,W]`` in [0, 1]: where the retoucher edited."""
        return defect_map(self.source, self.threshold, ctx, self.name)


@LOSSES.register("keep")
class KeepLoss(DefectMapTerm):
    """Mean |output - input| over the pixels left alone, weighted by 1 - defect map (0 where nothing is left alone).

    Where target == input this is an L1 to the target, normalised by the untouched area alone, so it does not
    fade when defects are few; where the data differs by noise only (below the soft threshold) it pulls the
    output to the input, not to the noise. ``mask: given`` only suits data whose mask covers every change.
    """

    name = "keep"

    def forward(self, ctx: LossContext) -> torch.Tensor:
        still = (1.0 - self.defects(ctx)).expand_as(ctx.output)
        change = (ctx.output - ctx.input).abs()
        return (still * change).sum() / still.sum().clamp_min(1.0)


@LOSSES.register("edit_map")
class EditMapLoss(DefectMapTerm):
    """Binary cross-entropy of an edit-mask generator's logits (``pred_mask``) against the defect map.

    With the soft map the edit map m learns "how much to edit here" (1 at changes of ``threshold`` or more,
    0 where the pair agrees), so out = x + m * delta stays at the input where nothing needs fixing.
    """

    name = "edit_map"
    reads_pred_mask = True

    def forward(self, ctx: LossContext) -> torch.Tensor:
        logits = ctx.need("pred_mask", "edit_map (build the generator with edit_mask: true)")
        return F.binary_cross_entropy_with_logits(logits, self.defects(ctx).to(logits.dtype))
