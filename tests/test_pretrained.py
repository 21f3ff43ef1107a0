"""Pretrained backbones: strictly offline resolution, loud random weights, perceptual terms behave."""

import pytest
import torch

import gan_retouch.losses  # noqa: F401  (registers the losses)
from gan_retouch.errors import ConfigError
from gan_retouch.losses.base import LossContext
from gan_retouch.losses.pretrained import build_lpips, require_torchvision_weights, weights_unavailable_reason
from gan_retouch.registry import LOSSES

FILES = {"vgg19": "vgg19-dcbb9e9d.pth", "vgg16": "vgg16-397923af.pth", "alexnet": "alexnet-owt-7be5be79.pth"}


@pytest.fixture()
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path / "hub" / "checkpoints"


@pytest.mark.parametrize("arch", sorted(FILES))
def test_offline_error_names_file_and_folder(arch: str, empty_cache) -> None:
    with pytest.raises(ConfigError) as error:
        require_torchvision_weights(arch)
    message = str(error.value)
    assert FILES[arch] in message and str(empty_cache) in message and "https://download.pytorch.org" in message
    assert weights_unavailable_reason(arch) == message


def test_cached_file_is_found(empty_cache) -> None:
    empty_cache.mkdir(parents=True)
    (empty_cache / FILES["alexnet"]).write_bytes(b"")
    assert weights_unavailable_reason("alexnet") is None
    assert require_torchvision_weights("alexnet") == empty_cache / FILES["alexnet"]


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
    with pytest.raises(ConfigError, match="cannot read vgg19 weights"):
        LOSSES.build("vgg")
    with pytest.raises(ConfigError, match="does not exist"):
        LOSSES.build("vgg", weights=str(tmp_path / "nowhere.pth"))
    with pytest.raises(ConfigError, match="Did you mean 'alexnet'"):
        require_torchvision_weights("alexnt")


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
