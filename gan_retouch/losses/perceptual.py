"""Perceptual loss terms: pix2pixHD's VGG19 feature loss and LPIPS, and the backbones a recipe's terms need."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from gan_retouch.losses.base import LossContext, LossTerm
from gan_retouch.losses.pretrained import LPIPS_BACKBONES, build_lpips, torchvision_features
from gan_retouch.registry import LOSSES, choice

VGG19_SLICES = ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))  # up to relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
PIX2PIXHD_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_WEIGHTS = "imagenet"
DEFAULT_NET = "alex"


@LOSSES.register("vgg")
class VGGLoss(LossTerm):
    """VGG19 perceptual loss (pix2pixHD): L1 between relu1_1..relu5_1 features, weighted 1/32..1.

    ``weights``: ``imagenet`` (torchvision's vgg19-dcbb9e9d.pth from its cache, downloaded there once) | a local
    state-dict path | ``random`` (tests only; warns). Inputs in [0, 1] get ImageNet normalisation; the target's
    features carry no gradient. The VGG forward runs under the engine's autocast, the distances in float32.
    """

    @staticmethod
    def backbone(args: dict[str, Any]) -> tuple[str, str]:
        """The torchvision arch and ``weights`` setting of a term with these recipe arguments."""
        return "vgg19", str(args.get("weights", DEFAULT_WEIGHTS))

    def __init__(self, weights: str = DEFAULT_WEIGHTS) -> None:
        super().__init__()
        features = torchvision_features("vgg19", weights)
        self.slices = torch.nn.ModuleList(features[start:stop] for start, stop in VGG19_SLICES)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """relu1_1 .. relu5_1 of an image in [0, 1]."""
        x = (x - self.mean) / self.std
        out = []
        for block in self.slices:
            x = block(x)
            out.append(x)
        return out

    def forward(self, ctx: LossContext) -> torch.Tensor:
        with ctx.network_autocast():  # the VGG forward runs like the engine's networks; the L1s in float32
            fake = self.features(ctx.output)
            with torch.no_grad():
                real = self.features(ctx.target)
        return sum(w * F.l1_loss(a.float(), b.float()) for w, a, b in zip(PIX2PIXHD_WEIGHTS, fake, real, strict=True))


@LOSSES.register("lpips")
class LPIPSLoss(LossTerm):
    """LPIPS between output and target (lpips package; ``net`` alex | vgg), mean over the batch.

    ``weights`` as for ``vgg``: ``imagenet`` is alexnet-owt-7be5be79.pth (alex) or vgg16-397923af.pth (vgg).
    """

    @staticmethod
    def backbone(args: dict[str, Any]) -> tuple[str, str]:
        """The torchvision arch and ``weights`` setting of a term with these recipe arguments."""
        net = choice(args.get("net", DEFAULT_NET), list(LPIPS_BACKBONES), "lpips net")
        return LPIPS_BACKBONES[net], str(args.get("weights", DEFAULT_WEIGHTS))

    def __init__(self, net: str = DEFAULT_NET, weights: str = DEFAULT_WEIGHTS) -> None:
        super().__init__()
        self.distance = build_lpips(net, weights)

    def forward(self, ctx: LossContext) -> torch.Tensor:
        return self.distance(ctx.output, ctx.target).mean()


def pretrained_backbones(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """(torchvision arch, ``weights``) of each term of a ``losses:`` mapping that runs a pretrained backbone.

    Lets a run fetch and check the weights before step 1, long before the terms are built.
    """
    needs = []
    for label, entry in spec.items():
        if isinstance(entry, dict):
            term = LOSSES.get(entry.get("type", label))
            if isinstance(term, type) and issubclass(term, (VGGLoss, LPIPSLoss)):
                needs.append(term.backbone(entry))
    return needs

