"""Pretrained ImageNet backbones for the perceptual losses and LPIPS, resolved strictly offline.

Weights come from torchvision's weights API and its cache, ``torch.hub.get_dir()/checkpoints`` (i.e.
``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``). Nothing is downloaded at run
time: a missing file is a ConfigError naming the file, the folder and how to get it. ``weights: random`` exists
for tests and says so loudly; a path to a local state-dict file is also accepted.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn
from torchvision import models

from gan_retouch.errors import ConfigError
from gan_retouch.registry import choice

TORCHVISION_WEIGHTS = {
    "vgg19": models.VGG19_Weights.IMAGENET1K_V1,
    "vgg16": models.VGG16_Weights.IMAGENET1K_V1,
    "alexnet": models.AlexNet_Weights.IMAGENET1K_V1,
}
LPIPS_BACKBONES = {"alex": "alexnet", "vgg": "vgg16"}


def weights_file(arch: str) -> Path:
    """Where torchvision's cache keeps ``arch``'s ImageNet weights (the file may not exist)."""
    choice(arch, list(TORCHVISION_WEIGHTS), "pretrained architecture")
    url = TORCHVISION_WEIGHTS[arch].url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def weights_unavailable_reason(arch: str) -> str | None:
    """None when ``arch``'s ImageNet weights are in the local cache, else what is missing and how to fix it."""
    path = weights_file(arch)
    if path.is_file():
        return None
    url = TORCHVISION_WEIGHTS[arch].url
    return (
        f"the pretrained ImageNet weights of {arch} are not available offline: {path.name} is missing from "
        f"{path.parent}. Download {url} (e.g. `curl -L -o {path} {url}` on a machine with network, or run "
        f"`python -c \"import torchvision; torchvision.models.{arch}(weights='IMAGENET1K_V1')\"` there and copy "
        f"the file) and put it in that folder (set TORCH_HOME to use another cache), or give the loss term "
        f"`weights: /path/to/{path.name}`."
    )


def require_torchvision_weights(arch: str) -> Path:
    """The local file of ``arch``'s ImageNet weights, or a ConfigError that says where to put it."""
    reason = weights_unavailable_reason(arch)
    if reason is not None:
        raise ConfigError(reason)
    return weights_file(arch)


def load_backbone_state(arch: str, weights: str) -> dict[str, torch.Tensor] | None:
    """The torchvision state dict for ``weights``: ``imagenet`` (local cache), a file path, or ``random`` (None).

    ``random`` warns: perceptual losses on an untrained backbone are only meaningful in tests.
    """
    if weights == "random":
        warnings.warn(
            f"{arch} backbone uses RANDOM weights (weights: random): the perceptual loss / LPIPS is NOT "
            "meaningful; use this only in tests",
            UserWarning,
            stacklevel=3,
        )
        return None
    path = require_torchvision_weights(arch) if weights == "imagenet" else Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"weights file {path} does not exist: give weights: imagenet, weights: random (tests only), or the path "
            f"of a torchvision {arch} state dict such as {weights_file(arch).name}"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        raise ConfigError(f"cannot read {arch} weights from {path}: {exc}") from exc


def torchvision_features(arch: str, weights: str) -> nn.Sequential:
    """The frozen, eval-mode ``features`` stack of a torchvision VGG/AlexNet with the chosen weights."""
    choice(arch, list(TORCHVISION_WEIGHTS), "pretrained architecture")
    state = load_backbone_state(arch, weights)
    with torch.device("meta"):  # the classifier (most of the weights) is never materialised
        features = getattr(models, arch)(weights=None).features
    features = features.to_empty(device="cpu")
    if state is None:
        for layer in features.modules():
            if isinstance(layer, nn.Conv2d):
                layer.reset_parameters()
    else:
        own = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        try:
            features.load_state_dict(own)
        except RuntimeError as exc:
            raise ConfigError(f"the {arch} weights do not fit torchvision's {arch}: {exc}") from exc
    features = features.eval()
    features.requires_grad_(False)
    return features


class LPIPSDistance(nn.Module):
    """LPIPS (Zhang et al. 2018) on [0, 1] images: ``forward(a, b)`` returns one distance per image ``[N]``.

    The lpips package supplies the calibrated linear layers (shipped inside it); the backbone comes from
    torchvision's weights, resolved offline like the perceptual loss. Always in eval mode, frozen.
    """

    def __init__(self, net: str = "alex", weights: str = "imagenet") -> None:
        super().__init__()
        import lpips

        choice(net, list(LPIPS_BACKBONES), "lpips net")
        arch = LPIPS_BACKBONES[net]
        features = torchvision_features(arch, weights)
        with warnings.catch_warnings():  # lpips builds its random trunk with torchvision's deprecated flag
            warnings.filterwarnings("ignore", message=".*(pretrained|weight enum).*", category=UserWarning)
            self.model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
        slices = [getattr(self.model.net, f"slice{i}") for i in range(1, self.model.net.N_slices + 1)]
        state = {
            f"slice{number}.{index}.{key}": value
            for number, block in enumerate(slices, start=1)
            for index, _ in block.named_children()
            for key, value in features[int(index)].state_dict().items()
        }
        self.model.net.load_state_dict(state, strict=True)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> LPIPSDistance:
        """Stays in eval mode: LPIPS is a fixed metric (its dropout must stay off)."""
        return super().train(False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.model(a, b, normalize=True).flatten()


def build_lpips(net: str = "alex", weights: str = "imagenet") -> nn.Module:
    """An LPIPS distance (``alex`` | ``vgg``) taking [0, 1] images and returning per-image distances ``[N]``."""
    return LPIPSDistance(net, weights)
