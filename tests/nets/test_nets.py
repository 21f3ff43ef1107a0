"""Generators: shapes and ranges at any size, the residual identity, AutoRetouch's size and additive skip."""

import pytest
import torch

import gan_retouch.nets  # noqa: F401  (registers the networks)
from gan_retouch.errors import ConfigError
from gan_retouch.nets.autoretouch import AutoRetouch
from gan_retouch.nets.base import run_generator
from gan_retouch.registry import GENERATORS

TINY = {
    "autoretouch": {"ngf": 4, "n_blocks": 2},
    "pix2pix_resnet": {"ngf": 4, "n_blocks": 2},
    "pix2pix_unet": {"ngf": 4, "num_downs": 3},
    "resunet": {"filters": [4, 8, 8], "kernels": [7, 3, 3]},
    "u2net_lite": {"width": 6, "mid": 4},
    "gated": {"ngf": 4, "dilations": [2, 4]},
    "template": {"width": 4},
}
SIZES = [(32, 32), (37, 50)]  # square, and non-square not divisible by any stride


def build(name: str, **extra) -> torch.nn.Module:
    return GENERATORS.build(name, **TINY[name], **extra).eval()


def call(generator: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    mask = (torch.rand(x.shape[0], 1, *x.shape[-2:]) > 0.8).float()
    with torch.no_grad():
        return run_generator(generator, x, mask)


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("size", SIZES)
def test_shapes_and_range(name: str, size: tuple[int, int]) -> None:
    x = torch.rand(2, 3, *size)
    rgb, mask_logits = call(build(name), x)
    assert rgb.shape == x.shape
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    assert not torch.allclose(rgb, x, atol=1e-3)  # a fresh non-residual network is not the identity
    assert (rgb[0] - rgb[1]).abs().max() > 1e-3  # the input reaches the output (no vanishing signal)
    if GENERATORS.get(name).has_mask_head:
        assert mask_logits is not None and mask_logits.shape == (2, 1, *size)
    else:
        assert mask_logits is None


@pytest.mark.parametrize("name", sorted(TINY))
def test_residual_is_identity_at_init(name: str) -> None:
    x = torch.rand(1, 3, 37, 50)
    rgb, _ = call(build(name, residual=True), x)
    assert torch.allclose(rgb, x, atol=1e-6)


def test_every_tested_generator_is_registered() -> None:
    assert set(TINY) <= set(GENERATORS.names())


def test_autoretouch_default_parameter_count() -> None:
    # head 9,472 + down 73,856 + 15 blocks x 295,424 + up 73,792 + tail 1,731 (convs before BN have no bias)
    assert sum(p.numel() for p in AutoRetouch().parameters()) == 4_590_211


def test_autoretouch_exposes_named_layers() -> None:
    names = dict(AutoRetouch(ngf=4, n_blocks=3).named_modules())
    for name in ("head", "down", "blocks.0", "blocks.2", "up", "tail"):
        assert name in names


def test_autoretouch_additive_skip_carries_x0() -> None:
    net = AutoRetouch(ngf=4, n_blocks=2).eval()
    for p in net.up.parameters():  # zero the whole body path: only x0 reaches the tail
        torch.nn.init.zeros_(p)
    a, b = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        expected = (net.tail(net.head(a * 2 - 1)) + 1) / 2
        out_a, out_b = net(a), net(b)
    assert torch.allclose(out_a, expected, atol=1e-6)
    assert not torch.allclose(out_a, out_b)


@pytest.mark.parametrize("upsample", ["nearest", "bilinear", "transpose", "pixelshuffle"])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_autoretouch_options(upsample: str, norm: str) -> None:
    net = AutoRetouch(ngf=4, n_blocks=1, norm=norm, upsample=upsample).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, 17, 22)).shape == (1, 3, 17, 22)


def test_bad_options_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="upsample must be one of.*Did you mean 'nearest'"):
        AutoRetouch(upsample="nearst")
    with pytest.raises(ConfigError, match="norm must be one of"):
        GENERATORS.build("pix2pix_resnet", norm="group")
    with pytest.raises(ConfigError, match="same length"):
        GENERATORS.build("resunet", filters=[4, 8], kernels=[3])


def test_unknown_generator_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'autoretouch'.*Available: .*pix2pix_unet"):
        GENERATORS.build("autoretuch")


def test_unknown_argument_names_the_closest() -> None:
    with pytest.raises(ConfigError, match="no argument 'n_block'.*Did you mean 'n_blocks'"):
        GENERATORS.build("autoretouch", n_block=3)


def test_gated_requires_a_mask() -> None:
    with pytest.raises(ConfigError, match="needs a defect mask"):
        build("gated")(torch.rand(1, 3, 16, 16))


def test_gated_output_depends_on_the_mask() -> None:
    net, x = build("gated"), torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(net(x, torch.zeros(1, 1, 16, 16)), net(x, torch.ones(1, 1, 16, 16)))


def test_u2net_mask_head_trains() -> None:
    net = build("u2net_lite").train()
    rgb, logits = net(torch.rand(2, 3, 32, 32))
    (rgb.mean() + logits.mean()).backward()
    assert net.mask_fuse.weight.grad is not None and net.rgb_head[0].weight.grad is not None
