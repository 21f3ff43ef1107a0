"""Discriminators: the pix2pixHD output convention, receptive sizes, conditioning, spectral norm."""

import pytest
import torch

import gan_retouch.nets  # noqa: F401  (registers the networks)
from gan_retouch.errors import ConfigError
from gan_retouch.nets.discriminators import MultiScale, PatchGAN
from gan_retouch.registry import DISCRIMINATORS


@pytest.mark.parametrize("size", [(32, 32), (37, 50)])
def test_patchgan_returns_features_then_logits(size: tuple[int, int]) -> None:
    d = PatchGAN(ndf=4, n_layers=2)
    out = d(torch.rand(2, 3, *size), torch.rand(2, 3, *size))
    assert len(out) == 1 and len(out[0]) == 4  # 2 stride-2 convs, 1 stride-1 conv, the logits
    channels = [f.shape[1] for f in out[0]]
    assert channels == [4, 8, 16, 1]
    h, w = size
    assert out[0][-1].shape == (2, 1, h // 4 - 2, w // 4 - 2)


def test_patchgan_default_is_pix2pix_70x70() -> None:
    d = PatchGAN()
    assert sum(p.numel() for p in d.parameters()) == 2_768_705  # pix2pix's basic netD
    assert d(torch.rand(1, 3, 70, 70), torch.rand(1, 3, 70, 70))[0][-1].shape == (1, 1, 6, 6)


def test_patchgan_is_conditional() -> None:
    d = PatchGAN(ndf=4, n_layers=2).eval()
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        a = d(torch.zeros(1, 3, 32, 32), image)[0][-1]
        b = d(torch.ones(1, 3, 32, 32), image)[0][-1]
    assert not torch.allclose(a, b)
    assert PatchGAN(ndf=4, n_layers=2, conditional=False).layers[0][0].in_channels == 3


def test_multiscale_one_list_per_scale() -> None:
    d = MultiScale(num_D=3, ndf=4, n_layers=1)
    out = d(torch.rand(1, 3, 40, 48), torch.rand(1, 3, 40, 48))
    assert len(out) == 3
    assert [tuple(s[-1].shape[-2:]) for s in out] == [(18, 22), (8, 10), (3, 4)]


def test_spectral_norm_wraps_every_conv() -> None:
    d = PatchGAN(ndf=4, n_layers=2, norm="none", spectral_norm=True)
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4 and all(hasattr(c, "parametrizations") for c in convs)
    d(torch.rand(1, 3, 24, 24), torch.rand(1, 3, 24, 24))[0][-1].mean().backward()


def test_too_small_input_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="at least 24 px"):
        PatchGAN(ndf=4, n_layers=3)(torch.rand(1, 3, 20, 64), torch.rand(1, 3, 20, 64))


def test_registry_names_and_arguments() -> None:
    assert {"patchgan", "multiscale"} <= set(DISCRIMINATORS.names())
    with pytest.raises(ConfigError, match="Did you mean 'n_layers'"):
        DISCRIMINATORS.build("patchgan", nlayers=2)
    with pytest.raises(ConfigError, match="Available: multiscale, patchgan"):
        DISCRIMINATORS.build("patchgann")
