"""The parametric student: identity at start, the exact gain/offset form, any size, budgets and figures."""

import pytest
import torch

import gan_retouch.nets.autoretouch  # noqa: F401  (registers the teacher)
from gan_retouch.distill import budget as student_budget
from gan_retouch.errors import ConfigError
from gan_retouch.inference.profile import count_macs, model_size_mb
from gan_retouch.nets.student import Student
from gan_retouch.registry import GENERATORS

TINY = {"width": 4, "depth": 1, "levels": 2}


@pytest.mark.parametrize("lowres", [1, 2, 4])
def test_fresh_student_returns_its_input_exactly(lowres):
    model = Student(**TINY, lowres=lowres).eval()
    x = torch.rand(2, 3, 37, 50)
    assert torch.equal(model(x), x)


def test_all_zero_parameters_give_the_identity():
    model = Student(**TINY)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(model(x), x)


def test_output_is_gain_and_offset_applied_to_the_input():
    model = Student(**TINY).eval()
    with torch.no_grad():
        model.head.bias.copy_(torch.tensor([0.5, 0.0, -0.5, 0.0, 0.1, -0.2]))
    x = torch.rand(1, 3, 32, 32)
    gain = torch.tensor([1.5, 1.0, 0.5]).view(1, 3, 1, 1)
    offset = torch.tensor([0.0, 0.1, -0.2]).view(1, 3, 1, 1)
    expected = (gain * x + offset).clamp(0, 1)
    assert torch.allclose(model(x), expected, atol=1e-6)


def test_any_size_and_lowres_stride():
    model = Student(width=4, depth=1, levels=3, lowres=2)
    assert model.stride == 16
    torch.nn.init.normal_(model.head.weight, std=0.1)
    y = model(torch.rand(1, 3, 45, 67))
    assert y.shape == (1, 3, 45, 67) and 0.0 <= y.min() and y.max() <= 1.0


def test_registered_with_stable_module_names():
    model = GENERATORS.build("student", **TINY)
    names = dict(model.named_modules())
    for name in ("stem", "encoders.0", "encoders.1", "bottleneck", "decoders.0", "decoders.1", "head"):
        assert name in names


def test_residual_flag_builds_the_same_network():
    plain, residual = Student(**TINY), Student(**TINY, residual=True)
    assert [k for k in plain.state_dict()] == [k for k in residual.state_dict()]


@pytest.mark.parametrize("args", [{"width": 0}, {"levels": 0}, {"depth": -1}, {"lowres": 3}])
def test_bad_arguments_are_clear_errors(args):
    with pytest.raises(ConfigError, match="student"):
        Student(**args)


def test_default_student_fits_the_budget_and_is_20x_cheaper_than_the_teacher():
    student = GENERATORS.build("student")
    with torch.device("meta"):
        teacher = GENERATORS.build("autoretouch")
    student_macs, teacher_macs = count_macs(student), count_macs(teacher)
    assert model_size_mb(student) <= 10.0
    assert student_macs * 20 <= teacher_macs
    assert model_size_mb(student) < model_size_mb(teacher) / 5


def test_budget_report_for_a_fitting_and_a_too_large_configuration():
    ok, figures = student_budget.fits({}, budget_mb=10, budget_gmacs=65)
    assert ok and figures["fits_mb"] and figures["fits_gmacs"]
    # half, apart from the BatchNorm step counters (int64 buffers keep their size)
    assert figures["mb_fp16"] == pytest.approx(figures["mb_fp32"] / 2, rel=1e-3)
    assert figures["mb_fp16"] > figures["mb_fp32"] / 2
    ok, figures = student_budget.fits({"width": 64, "levels": 4}, budget_mb=10, budget_gmacs=65)
    assert not ok and not figures["fits_mb"] and not figures["fits_gmacs"]


def test_largest_fitting_picks_the_biggest_that_fits(monkeypatch):
    monkeypatch.setattr(student_budget, "GRID_WIDTHS", (16, 32, 64))
    monkeypatch.setattr(student_budget, "GRID_DEPTHS", (1, 2))
    monkeypatch.setattr(student_budget, "GRID_LEVELS", (2, 3))
    args = student_budget.largest_fitting(budget_mb=None, budget_gmacs=50, base_args={"lowres": 1})
    chosen = student_budget.fits(args, None, 50)[1]["gmacs"]
    assert chosen <= 50 and args["lowres"] == 1
    others = [student_budget.fits(a, None, 50) for a in student_budget.grid({"lowres": 1})]
    assert all(figures["gmacs"] <= chosen for ok, figures in others if ok)
    with pytest.raises(ConfigError, match="no student of the grid fits"):
        student_budget.largest_fitting(budget_mb=0.01, budget_gmacs=None)
    with pytest.raises(ConfigError, match="needs a budget"):
        student_budget.largest_fitting(None, None)
