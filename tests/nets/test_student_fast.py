"""The fast student: identity at start, the exact gain/offset form per full-resolution pixel, BatchNorm folding,
channels_last, any size, budgets."""

import pytest
import torch

import gan_retouch.nets  # noqa: F401  (registers the generators)
from gan_retouch.distill import budget as student_budget
from gan_retouch.errors import ConfigError
from gan_retouch.inference.profile import count_macs, model_size_mb
from gan_retouch.nets.student_fast import FastStudent
from gan_retouch.registry import GENERATORS

TINY = {"width": 8, "blocks": 1, "context": 1, "detail": 4}


def trained_like(model: FastStudent) -> FastStudent:
    """Random head and BatchNorm statistics, as after training (a fresh model is the identity)."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        model.head.weight.copy_(torch.randn(model.head.weight.shape, generator=generator) * 0.1)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
    return model.eval()


@pytest.mark.parametrize("detail", [0, 4])
def test_fresh_student_returns_its_input_exactly(detail):
    model = FastStudent(**{**TINY, "detail": detail}).eval()
    x = torch.rand(2, 3, 37, 50)
    assert torch.equal(model(x), x)


def test_gain_and_offset_act_on_single_full_resolution_pixels():
    """Pore-level detail: the head can change one full-resolution pixel of a 2x2 cell and leave its neighbours."""
    model = FastStudent(**TINY).eval()
    cell = 3 * 4
    with torch.no_grad():
        model.head.bias[cell + 3] = 0.25  # offset b of channel 0 (red) at sub-pixel 3 = row 1, column 1 of the cell
        model.head.bias[0 * 4 + 3] = -0.5  # gain a of the same pixel
    x = torch.full((1, 3, 16, 16), 0.4)
    out = model(x)
    changed = (out - x).abs() > 1e-6
    assert changed.sum() == 64  # one pixel per 2x2 cell, red only
    assert changed[0, 0, 1::2, 1::2].all()
    assert torch.allclose(out[0, 0, 1, 1], torch.tensor(0.5 * 0.4 + 0.25))


@pytest.mark.parametrize("detail", [0, 4])
def test_fused_equals_unfused(detail):
    model = trained_like(FastStudent(**{**TINY, "detail": detail}))
    x = torch.rand(2, 3, 40, 56)
    with torch.no_grad():
        reference = model(x)
        fused = model.fuse()(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert (reference - x).abs().max() > 1e-3  # the test can fail: the model does change the image
    assert torch.allclose(fused, reference, atol=1e-5)


def test_fuse_needs_eval_mode():
    with pytest.raises(ConfigError, match="eval"):
        FastStudent(**TINY).train().fuse()


def test_channels_last_gives_the_same_output():
    model = trained_like(FastStudent(**TINY)).fuse()
    x = torch.rand(1, 3, 64, 48)
    with torch.no_grad():
        reference = model(x)
        fast = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(fast, reference, atol=1e-5)


def test_any_size_in_range_and_trains():
    model = FastStudent(**TINY)
    assert model.stride == 8
    torch.nn.init.normal_(model.head.weight, std=0.1)
    x = torch.rand(2, 3, 45, 67)
    y = model(x)
    assert y.shape == x.shape and 0.0 <= y.min() and y.max() <= 1.0
    y.mean().backward()
    assert model.stem.conv.weight.grad is not None and model.stem.conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("args", [{"width": 0}, {"blocks": -1}, {"context": "2"}, {"detail": -1}])
def test_bad_arguments_are_clear_errors(args):
    with pytest.raises(ConfigError, match="student_fast"):
        FastStudent(**args)


def test_default_is_small_and_at_least_50x_cheaper_than_the_teacher():
    with torch.device("meta"):
        student, teacher = GENERATORS.build("student_fast"), GENERATORS.build("autoretouch")
    assert model_size_mb(student) <= 10.0
    assert count_macs(student) * 50 <= count_macs(teacher)


def test_budget_grid_of_the_fast_student():
    ok, figures = student_budget.fits({}, budget_mb=10, budget_gmacs=30, name="student_fast")
    assert ok and figures["gmacs"] <= 30
    args = student_budget.largest_fitting(None, 5, name="student_fast", base_args={"detail": 16})
    assert set(args) == {"width", "blocks", "context", "detail"}
    assert student_budget.fits(args, None, 5, name="student_fast")[1]["gmacs"] <= 5
    with pytest.raises(ConfigError, match="student generators"):
        student_budget.fits({}, 10, None, name="autoretouch")


@pytest.mark.parametrize("name,args", [("student_fast", TINY), ("student", {"width": 4, "depth": 1, "levels": 2})])
def test_edit_mask_students_start_at_the_identity_and_gate_the_change(name, args):
    model = GENERATORS.build(name, **args, edit_mask=True).eval()
    x = torch.rand(1, 3, 40, 24)
    rgb, logits = model(x)
    assert torch.equal(rgb, x) and logits.shape == (1, 1, 40, 24)
    with torch.no_grad():
        model.head.bias.fill_(0.1)  # a change everywhere, edit logit 0.1 everywhere
        gated = model(x)[0] - x
        edit_channels = model.head.out_channels - (6 if name == "student" else 2 * 3 * 4)  # z of each pixel of a cell
        model.head.bias[-edit_channels:] = -30.0  # the edit logits: the map closes, nothing changes
        closed = model(x)[0] - x
    assert gated.abs().max() > 1e-2 and closed.abs().max() < 1e-6


def test_edit_mask_fast_student_fuses():
    model = trained_like(FastStudent(**TINY, edit_mask=True))
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        rgb, logits = model(x)
        fused_rgb, fused_logits = model.fuse()(x)
    assert torch.allclose(fused_rgb, rgb, atol=1e-5) and torch.allclose(fused_logits, logits, atol=1e-4)
