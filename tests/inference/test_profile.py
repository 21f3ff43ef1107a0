"""Model statistics: parameter counts, sizes and MAC counts against hand-computed values."""

import pytest
import torch
from torch import nn

from gan_retouch.errors import ConfigError
from gan_retouch.inference.profile import (
    count_macs,
    count_parameters,
    inference_copy,
    measure_latency,
    model_figures,
    model_latency,
    model_size_mb,
)


def test_conv_macs_hand_computed() -> None:
    # 8x8 output, each output of 4 channels sums 3 * 3 * 3 products
    conv = nn.Conv2d(3, 4, 3, padding=1)
    assert count_macs(conv, (1, 3, 8, 8)) == 8 * 8 * 4 * 3 * 3 * 3


def test_strided_conv_and_batch_scale_the_count() -> None:
    conv = nn.Conv2d(2, 5, 3, stride=2, padding=1)
    assert count_macs(conv, (3, 2, 16, 16)) == 3 * 5 * 8 * 8 * (2 * 3 * 3)


def test_depthwise_and_grouped_conv_macs() -> None:
    depthwise = nn.Conv2d(6, 6, 3, padding=1, groups=6)
    assert count_macs(depthwise, (1, 6, 10, 10)) == 6 * 10 * 10 * 3 * 3
    grouped = nn.Conv2d(6, 4, 1, groups=2)
    assert count_macs(grouped, (1, 6, 10, 10)) == 4 * 10 * 10 * 3


def test_transposed_conv_macs() -> None:
    # each of the 2*5*5 input elements feeds (3 out channels) * 4*4 kernel taps
    up = nn.ConvTranspose2d(2, 3, 4, stride=2, padding=1)
    assert count_macs(up, (1, 2, 5, 5)) == 2 * 5 * 5 * 3 * 4 * 4


def test_linear_macs_and_uncounted_layers() -> None:
    model = nn.Sequential(nn.Linear(10, 7), nn.ReLU(), nn.Linear(7, 2))
    assert count_macs(model, (4, 10)) == 4 * (10 * 7 + 7 * 2)
    norm_only = nn.Sequential(nn.BatchNorm2d(3), nn.LeakyReLU(0.2), nn.Upsample(scale_factor=2))
    assert count_macs(norm_only, (1, 3, 8, 8)) == 0


def test_reused_layer_is_counted_per_call() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 1, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(self.conv(x))

    assert count_macs(Twice(), (1, 2, 4, 4)) == 2 * (4 * 4 * 2 * 2)


def test_count_macs_leaves_the_model_untouched() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count_macs(model, (2, 3, 16, 16))
    after = model.state_dict()
    assert all(after[k].device.type == "cpu" and torch.equal(after[k], v) for k, v in before.items())
    assert not model[0]._forward_hooks


def test_parameters_and_size() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    params = 3 * 4 * 9 + 4 + 4 + 4
    assert count_parameters(model) == params
    # state dict: parameters + running mean/var (4 + 4 floats) + num_batches_tracked (int64, 8 bytes)
    floats = params + 8
    assert model_size_mb(model) == pytest.approx((floats * 4 + 8) / 1e6)
    assert model_size_mb(model, torch.float16) == pytest.approx((floats * 2 + 8) / 1e6)


def test_bad_inputs_raise_config_errors() -> None:
    with pytest.raises(ConfigError, match="floating-point"):
        model_size_mb(nn.Linear(2, 2), torch.int8)
    with pytest.raises(ConfigError, match="positive input shape"):
        count_macs(nn.Linear(2, 2), (1, 0))


def test_generator_macs_include_its_padding_to_the_stride() -> None:
    from gan_retouch.nets.base import Generator

    class Tiny(Generator):
        stride = 4

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)

        def forward_padded(self, x, mask=None):
            return torch.tanh(self.conv(x))

    # 30x30 is padded to 32x32 inside forward
    assert count_macs(Tiny(), (1, 3, 30, 30)) == 32 * 32 * 3 * 3 * 3 * 3


def test_functional_convolutions_are_counted() -> None:
    """The hand-written hook counter missed convs called through torch.nn.functional; FlopCounterMode does not."""

    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(4, 3, 3, 3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.conv2d(x, self.weight, padding=1)

    assert count_macs(Functional(), (1, 3, 8, 8)) == 8 * 8 * 4 * 3 * 3 * 3


def test_mask_guided_generator_is_counted_with_a_mask() -> None:
    import gan_retouch.nets  # noqa: F401  (registers the generators)
    from gan_retouch.registry import GENERATORS

    gated = GENERATORS.build("gated")
    assert gated.takes_mask and count_macs(gated, (1, 3, 64, 64)) > 0


def test_model_figures_and_latency() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Conv2d(8, 3, 1))
    figures = model_figures(model, size=16)
    assert figures["params"] == count_parameters(model) and figures["size"] == 16
    assert figures["gmacs"] * 1e9 == pytest.approx(16 * 16 * (8 * 27 + 3 * 8))
    assert figures["mb_fp16"] < figures["mb_fp32"]
    calls = []
    latency = measure_latency(lambda: calls.append(1), min_time_s=0.01, warmup=2)
    assert latency["runs"] >= 1 and 0 <= latency["min"] <= latency["median"] <= latency["p90"]
    assert len(calls) > latency["runs"]  # warm-up calls are not timed
    with pytest.raises(ConfigError, match="> 0 seconds"):
        measure_latency(lambda: None, min_time_s=0)


def test_model_latency_leaves_the_model_untouched() -> None:
    from gan_retouch.nets.student_fast import FastStudent

    model = FastStudent(width=4, blocks=1, context=1).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    latency = model_latency(model, size=32, min_time_s=0.01, channels_last=True)
    assert latency["median"] > 0 and model.training
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_inference_copy_is_fused_eval_and_channels_last() -> None:
    from gan_retouch.nets.student_fast import FastStudent

    model = FastStudent(width=4, blocks=1, context=1)
    copy = inference_copy(model, channels_last=True)
    assert not copy.training and model.training
    assert not any(isinstance(m, nn.BatchNorm2d) for m in copy.modules())
    assert copy.head.weight.is_contiguous(memory_format=torch.channels_last)
