"""Pretrained backbones offline: the refusal names file, folder and fix; loud random weights; the terms behave.

(Downloads, faked: tests/engine/test_pretrained_download.py.)
"""

import hashlib
from types import SimpleNamespace

import pytest
import torch

import gan_retouch.losses  # noqa: F401  (registers the losses)
from gan_retouch.errors import ConfigError
from gan_retouch.losses.base import LossContext
from gan_retouch.losses.pretrained import (
    TORCHVISION_WEIGHTS,
    build_lpips,
    fetch_weights,
    weights_unavailable_reason,
)
from gan_retouch.registry import LOSSES

FILES = {"vgg19": "vgg19-dcbb9e9d.pth", "vgg16": "vgg16-397923af.pth", "alexnet": "alexnet-owt-7be5be79.pth"}


SIZES_MIB = {"vgg19": 548, "vgg16": 528, "alexnet": 233}  # torchvision's metadata, shown in the messages


@pytest.fixture()
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # conftest sets GAN_RETOUCH_OFFLINE=1
    return tmp_path / "hub" / "checkpoints"


@pytest.mark.parametrize("arch", sorted(FILES))
def test_offline_error_names_file_folder_size_and_switch(arch: str, empty_cache) -> None:
    with pytest.raises(ConfigError) as error:
        fetch_weights(arch)
    message = str(error.value)
    assert f"{FILES[arch]} is missing from {empty_cache}" in message and "\n" not in message
    assert f"https://download.pytorch.org/models/{FILES[arch]} ({SIZES_MIB[arch]} MiB)" in message
    assert "downloading is off (GAN_RETOUCH_OFFLINE=1)" in message and "TORCH_HOME" in message
    reason = weights_unavailable_reason(arch)  # the cache-only check (LPIPS metric auto) names the same file
    assert f"{FILES[arch]} (the ImageNet weights of {arch}, {SIZES_MIB[arch]} MiB, from https://download" in reason
    assert reason.endswith(f"is missing from {empty_cache}")


def test_the_offline_option_alone_also_refuses_and_says_so(empty_cache, monkeypatch) -> None:
    monkeypatch.delenv("GAN_RETOUCH_OFFLINE")
    with pytest.raises(ConfigError, match=r"downloading is off \(pretrained.offline: true\)"):
        fetch_weights("vgg19", offline=True)


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_an_unreadable_offline_variable_is_a_clear_error(value: str, empty_cache, monkeypatch) -> None:
    monkeypatch.setenv("GAN_RETOUCH_OFFLINE", value)
    with pytest.raises(ConfigError, match=f"GAN_RETOUCH_OFFLINE='{value}' is not understood"):
        fetch_weights("vgg19")


def test_cached_file_is_found(empty_cache, monkeypatch) -> None:
    empty_cache.mkdir(parents=True)
    payload = b"stand-in weights"
    name = f"alexnet-fake-{hashlib.sha256(payload).hexdigest()[:8]}.pth"  # its hash prefix matches (issue 33)
    monkeypatch.setitem(TORCHVISION_WEIGHTS, "alexnet",
                        SimpleNamespace(url=f"https://download.example/{name}", meta={"_file_size": 1.0}))
    (empty_cache / name).write_bytes(payload)
    assert weights_unavailable_reason("alexnet") is None
    assert fetch_weights("alexnet") == empty_cache / name


def test_loss_terms_raise_the_offline_error(empty_cache) -> None:
    with pytest.raises(ConfigError, match="vgg19-dcbb9e9d.pth is missing"):
        LOSSES.build("vgg")
    with pytest.raises(ConfigError, match="alexnet-owt-7be5be79.pth is missing"):
        LOSSES.build("lpips", net="alex")
    with pytest.raises(ConfigError, match="vgg16-397923af.pth is missing"):
        build_lpips("vgg")


def test_corrupt_or_missing_local_files_are_clear_errors(empty_cache, tmp_path) -> None:
    empty_cache.mkdir(parents=True)
    (empty_cache / FILES["vgg19"]).write_bytes(b"not a state dict")
    with pytest.raises(ConfigError, match="vgg19-dcbb9e9d.pth is damaged or not the published one"):
        LOSSES.build("vgg")
    with pytest.raises(ConfigError, match="does not exist"):
        LOSSES.build("vgg", weights=str(tmp_path / "nowhere.pth"))
    with pytest.raises(ConfigError, match="Did you mean 'alexnet'"):
        fetch_weights("alexnt")


@pytest.fixture(scope="module")
def random_vgg():
    with pytest.warns(UserWarning, match="RANDOM weights"):
        return LOSSES.build("vgg", weights="random")


def test_vgg_zero_for_identical_and_grows_with_distortion(random_vgg) -> None:
    torch.manual_seed(0)
    target = torch.rand(1, 3, 16, 16)
    noise = torch.randn_like(target)

    def loss(level: float) -> float:
        output = (target + level * noise).clamp(0, 1)
        return random_vgg(LossContext(input=target, output=output, target=target)).item()

    values = [loss(level) for level in (0.0, 0.05, 0.2)]
    assert values[0] == 0.0
    assert 0.0 < values[1] < values[2]


def test_vgg_gradient_reaches_the_output_only(random_vgg) -> None:
    output = torch.rand(1, 3, 16, 16, requires_grad=True)
    target = torch.rand(1, 3, 16, 16)
    random_vgg(LossContext(input=target, output=output, target=target)).backward()
    assert output.grad is not None and output.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in random_vgg.parameters())


def test_lpips_random_per_image_distances() -> None:
    # alex only: lpips builds a full random torchvision VGG16 (classifier included), too slow for CI
    with pytest.warns(UserWarning, match="RANDOM weights"):
        distance = build_lpips("alex", weights="random")
    distance.train()  # stays a fixed metric
    assert not distance.training
    a = torch.rand(2, 3, 32, 32)
    b = (a + 0.2 * torch.randn_like(a)).clamp(0, 1)
    same, different = distance(a, a), distance(a, b)
    assert same.shape == (2,) and torch.all(same == 0)
    assert torch.all(different > 0)
