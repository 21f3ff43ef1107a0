"""Adversarial terms: the GAN loss (vanilla | lsgan | hinge, both sides) and pix2pixHD feature matching."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gan_retouch.losses.base import DiscriminatorOutput, LossContext, LossTerm
from gan_retouch.registry import LOSSES, choice

GAN_MODES = ("vanilla", "lsgan", "hinge")


def _mean_over_scales(values: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(values).mean()


@LOSSES.register("gan")
class GANLoss(LossTerm):
    """Adversarial loss, ``mode`` vanilla (BCE with logits) | lsgan (least squares) | hinge; averaged over scales.

    Generator side (``forward``, on D(input, output)): vanilla BCE(D(fake), 1); lsgan mean((D(fake) - 1)^2);
    hinge -mean(D(fake)). Discriminator side (``discriminator_loss``): vanilla BCE(D(real), 1) + BCE(D(fake), 0);
    lsgan mean((D(real) - 1)^2) + mean(D(fake)^2); hinge mean(relu(1 - D(real))) + mean(relu(1 + D(fake))).
    The D side is the plain sum of its two halves (pix2pix halves it; scale with the D learning rate instead).
    """

    needs_discriminator = True

    def __init__(self, mode: str = "lsgan") -> None:
        super().__init__()
        self.mode = choice(mode, GAN_MODES, "gan mode")

    def _towards(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        """vanilla / lsgan: the distance of the logits from the real (1) or fake (0) label."""
        label = torch.full_like(logits, 1.0 if real else 0.0)
        if self.mode == "vanilla":
            return F.binary_cross_entropy_with_logits(logits, label)
        return F.mse_loss(logits, label)

    def generator_loss(self, fake: DiscriminatorOutput) -> torch.Tensor:
        """The generator's loss from the discriminator's outputs on the generated images."""
        if self.mode == "hinge":
            return _mean_over_scales([-scale[-1].mean() for scale in fake])
        return _mean_over_scales([self._towards(scale[-1], real=True) for scale in fake])

    def discriminator_loss(self, real: DiscriminatorOutput, fake: DiscriminatorOutput) -> torch.Tensor:
        """The discriminator's loss from its outputs on real pairs and on (detached) generated pairs."""
        losses = []
        for real_scale, fake_scale in zip(real, fake, strict=True):
            real_logits, fake_logits = real_scale[-1], fake_scale[-1]
            if self.mode == "hinge":
                losses.append(F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())
            else:
                losses.append(self._towards(real_logits, real=True) + self._towards(fake_logits, real=False))
        return _mean_over_scales(losses)

    def forward(self, ctx: LossContext) -> torch.Tensor:
        return self.generator_loss(ctx.need("fake", "gan"))


@LOSSES.register("feature_matching")
class FeatureMatchingLoss(LossTerm):
    """pix2pixHD feature matching: L1 between D's features of fake and real pairs (all but the logits).

    Averaged over the layers and the scales; the real features carry no gradient.
    """

    needs_discriminator = True

    def forward(self, ctx: LossContext) -> torch.Tensor:
        fake, real = ctx.need("fake", "feature_matching"), ctx.need("real", "feature_matching")
        per_scale = []
        for fake_scale, real_scale in zip(fake, real, strict=True):
            layers = [F.l1_loss(f, r.detach()) for f, r in zip(fake_scale[:-1], real_scale[:-1], strict=True)]
            per_scale.append(torch.stack(layers).mean())
        return _mean_over_scales(per_scale)
