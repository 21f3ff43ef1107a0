"""Pretrained ImageNet backbones for the perceptual losses and LPIPS: torchvision's files, downloaded once.

``weights: imagenet`` means torchvision's ImageNet weights (``models.VGG19_Weights.IMAGENET1K_V1`` etc.: their
URL, file name and size) in torchvision's cache, ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/
checkpoints``, by default ``~/.cache/torch/hub/checkpoints``), where torchvision, pix2pixHD, BasicSR and the lpips
package keep them too. A missing file is downloaded there once by ``torch.hub.download_url_to_file`` (what
torchvision's ``weights.get_state_dict`` calls): a progress bar, the sha256 prefix in the file name checked, the
bytes written to a temp file and moved into place, so a failed or interrupted download never leaves a file under
the final name. Offline (``pretrained.offline: true`` or ``GAN_RETOUCH_OFFLINE=1``), or when the download fails,
a missing file is a ConfigError naming the file, the folder and how to get it. ``weights: random`` exists for tests
and warns loudly; a path to a local state-dict file is also accepted.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
import warnings
from pathlib import Path

import torch
from rich.markup import escape
from torch import nn
from torchvision import models

from gan_retouch.console import console
from gan_retouch.errors import ConfigError
from gan_retouch.fileio import STALE_AFTER_S
from gan_retouch.registry import choice

TORCHVISION_WEIGHTS = {
    "vgg19": models.VGG19_Weights.IMAGENET1K_V1,
    "vgg16": models.VGG16_Weights.IMAGENET1K_V1,
    "alexnet": models.AlexNet_Weights.IMAGENET1K_V1,
}
LPIPS_BACKBONES = {"alex": "alexnet", "vgg": "vgg16"}
OFFLINE_ENV = "GAN_RETOUCH_OFFLINE"
OFFLINE_OPTION = "pretrained.offline"
DOWNLOAD_TIMEOUT_S = 60.0  # a connection or read that stalls this long fails the download (urllib would wait on)
_VERIFIED: set[tuple[str, int, int]] = set()  # (path, size, mtime) of cached files whose hash matched, this process


def weights_file(arch: str) -> Path:
    """Where torchvision's cache keeps ``arch``'s ImageNet weights (the file may not exist)."""
    choice(arch, list(TORCHVISION_WEIGHTS), "pretrained architecture")
    url = TORCHVISION_WEIGHTS[arch].url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def offline_env() -> bool:
    """Whether ``GAN_RETOUCH_OFFLINE`` forbids downloads (1/true/yes/on; unset, empty or 0/false/no/off allow them)."""
    value = os.environ.get(OFFLINE_ENV, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{OFFLINE_ENV}={os.environ[OFFLINE_ENV]!r} is not understood: set it to 1 (never download "
                      "pretrained weights) or 0, or unset it")


def _size(arch: str) -> str:
    return f"{TORCHVISION_WEIGHTS[arch].meta['_file_size']:.0f} MiB"  # torchvision's metadata (MiB)


def _how_to_get(arch: str, path: Path) -> str:
    url = TORCHVISION_WEIGHTS[arch].url
    return (f"Download {url} ({_size(arch)}) on a machine with network (e.g. `curl -L -o {path.name} {url}`) and put "
            f"it in {path.parent} (set TORCH_HOME to use another cache), or give the loss term "
            f"`weights: /path/to/{path.name}`.")


def _remove_dead_partials(path: Path) -> None:
    """Delete ``NAME.<hex>.partial`` files of downloads killed outright (SIGKILL, power loss) an hour ago or more.

    torch.hub removes its temp file on any Python-level failure or Ctrl-C; only a killed process leaves one. A live
    download writes its temp file continuously, so a fresh one is left alone.
    """
    for partial in path.parent.glob(f"{path.name}.*.partial"):
        with contextlib.suppress(OSError):  # gone meanwhile, or a read-only shared cache
            if time.time() - partial.stat().st_mtime > STALE_AFTER_S:
                partial.unlink()


def _download(arch: str, path: Path) -> None:
    """torch.hub's download of ``arch``'s file into ``path``: progress bar, sha256 check, temp file moved in place."""
    url = TORCHVISION_WEIGHTS[arch].url
    console.print(escape(f"downloading the ImageNet weights of {arch}: {path.name} ({_size(arch)}) from {url} into "
                         f"{path.parent} (once; later runs read it there)"))
    path.parent.mkdir(parents=True, exist_ok=True)
    hash_prefix = torch.hub.HASH_REGEX.search(path.name).group(1)  # as load_state_dict_from_url(check_hash=True)
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        torch.hub.download_url_to_file(url, str(path), hash_prefix=hash_prefix, progress=True)
    finally:
        socket.setdefaulttimeout(previous_timeout)


def _delete_hint(path: Path) -> str:
    return f"Delete it (rm {path}) so that it is downloaded again, or put a good copy there"


def check_cached_hash(path: Path) -> None:
    """A ConfigError when a cached file's sha256 does not start with the prefix in its name (torchvision's
    NAME-<prefix>.pth): a damaged or truncated download, or another file under its name. Once per process."""
    found = torch.hub.HASH_REGEX.search(path.name)
    status = path.stat()
    key = (str(path), status.st_size, status.st_mtime_ns)
    if found is None or key in _VERIFIED:
        return
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    if not digest.hexdigest().startswith(found.group(1)):
        raise ConfigError(f"the cached file {path} is damaged or not the published one: its sha256 starts with "
                          f"{digest.hexdigest()[:8]}, its name says {found.group(1)}. {_delete_hint(path)}")
    _VERIFIED.add(key)


def fetch_weights(arch: str, offline: bool = False) -> Path:
    """The cached file of ``arch``'s ImageNet weights, downloaded now when missing and downloads are allowed.

    ``offline`` (the ``pretrained.offline`` option) or ``GAN_RETOUCH_OFFLINE=1`` forbid the download; then, or when
    the download fails (no network, a proxy, a hash mismatch), a ConfigError says what is missing and how to get it.
    """
    path = weights_file(arch)
    _remove_dead_partials(path)
    if path.is_file():
        check_cached_hash(path)
        return path
    if offline or offline_env():
        switch = f"{OFFLINE_ENV}=1" if offline_env() else f"{OFFLINE_OPTION}: true"
        raise ConfigError(f"the pretrained ImageNet weights of {arch} are not available: {path.name} is missing from "
                          f"{path.parent} and downloading is off ({switch}). {_how_to_get(arch, path)}")
    try:
        _download(arch, path)
    except Exception as exc:  # urllib, ssl, http.client and torch.hub (hash mismatch) raise many types
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(
            f"could not download the pretrained ImageNet weights of {arch} ({path.name}) into {path.parent}: "
            f"{reason}; nothing was kept. {_how_to_get(arch, path)} On a cluster without network set "
            f"{OFFLINE_ENV}=1 (or {OFFLINE_OPTION}: true) so that no download is tried."
        ) from exc
    return path


def weights_unavailable_reason(arch: str) -> str | None:
    """None when ``arch``'s ImageNet weights are in the cache, else which file is missing where (never downloads)."""
    path = weights_file(arch)
    if path.is_file():
        return None
    return (f"{path.name} (the ImageNet weights of {arch}, {_size(arch)}, from {TORCHVISION_WEIGHTS[arch].url}) is "
            f"missing from {path.parent}")


def resolve_weights(arch: str, weights: str, offline: bool = False) -> Path | None:
    """The file behind a ``weights`` setting: ``imagenet`` (the cache, fetched), a local path, or ``random`` (None)."""
    if weights == "random":
        return None
    if weights == "imagenet":
        return fetch_weights(arch, offline)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"weights file {path} does not exist: give weights: imagenet, weights: random (tests only), or the path "
            f"of a torchvision {arch} state dict such as {weights_file(arch).name}"
        )
    return path


def load_backbone_state(arch: str, weights: str) -> dict[str, torch.Tensor] | None:
    """The torchvision state dict for ``weights``: ``imagenet`` (the cache, fetched), a file path, or ``random`` (None).

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
    path = resolve_weights(arch, weights)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        fix = _delete_hint(path) if weights == "imagenet" else "Give a torchvision state dict (weights: PATH)"
        raise ConfigError(f"cannot read {arch} weights from {path}: not a PyTorch state dict, or a damaged or "
                          f"truncated one ({type(exc).__name__}). {fix}") from None


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
    torchvision's weights, resolved like the perceptual loss's. Always in eval mode, frozen.
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
