"""Do no harm: the edit-mask generators, the soft defect weighting, the keep and edit_map terms."""

import pytest
import torch

import gan_retouch.losses  # noqa: F401  (registers the losses)
import gan_retouch.nets  # noqa: F401  (registers the networks)
from gan_retouch.errors import ConfigError
from gan_retouch.losses.base import LossContext
from gan_retouch.losses.masks import soft_example_mask
from gan_retouch.nets.base import run_generator
from gan_retouch.registry import GENERATORS, LOSSES

TINY = {
    "autoretouch": {"ngf": 4, "n_blocks": 2},
    "pix2pix_resnet": {"ngf": 4, "n_blocks": 2},
    "pix2pix_unet": {"ngf": 4, "num_downs": 3},
    "resunet": {"filters": [4, 8, 8], "kernels": [7, 3, 3]},
    "u2net_lite": {"width": 6, "mid": 4},
    "gated": {"ngf": 4, "dilations": [2, 4]},
}


def blob_pair(levels: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A flat grey 16x16 target and an input whose 4x4 centre is brighter by ``levels`` / 255."""
    target = torch.full((1, 3, 16, 16), 0.5)
    source = target.clone()
    source[..., 6:10, 6:10] += levels / 255
    return source, target


@pytest.mark.parametrize("name", sorted(TINY))
def test_edit_mask_generator_is_identity_at_init_and_returns_its_map(name: str) -> None:
    generator = GENERATORS.build(name, **TINY[name], edit_mask=True).eval()
    x = torch.rand(2, 3, 37, 50)
    with torch.no_grad():
        rgb, logits = run_generator(generator, x, torch.zeros(2, 1, 37, 50))
        edit = generator.edit_map(x, torch.zeros(2, 1, 37, 50))
    assert torch.equal(rgb, x)
    assert logits.shape == (2, 1, 37, 50) and generator.has_mask_head
    assert edit.min() >= 0.0 and edit.max() <= 1.0


@pytest.mark.parametrize("name, args", [("autoretouch", TINY["autoretouch"]),
                                        ("student_fast", {"width": 8, "blocks": 1, "context": 1, "detail": 4})])
def test_a_fresh_edit_map_starts_nearly_closed(name: str, args: dict) -> None:
    generator = GENERATORS.build(name, **args, edit_mask=True).eval()
    with torch.no_grad():
        edit = generator.edit_map(torch.rand(1, 3, 32, 32))
    assert torch.allclose(edit, torch.full_like(edit, 0.0474), atol=1e-3)  # sigmoid(-3): opens only where trained


def test_output_equals_input_where_the_edit_map_is_zero() -> None:
    generator = GENERATORS.build("autoretouch", **TINY["autoretouch"], edit_mask=True).eval()
    torch.nn.init.normal_(generator.tail.weight, std=0.5)  # a trained-looking change everywhere
    with torch.no_grad():
        generator.tail.bias[:3] = 0.3
        generator.tail.weight[3].zero_()
        generator.tail.bias[3] = -100.0  # m = sigmoid(-100) = 0: nothing may change
        x = torch.rand(1, 3, 16, 16)
        assert torch.equal(generator(x)[0], x)
        generator.tail.bias[3] = 100.0  # m = 1: the full change
        assert (generator(x)[0] - x).abs().max() > 0.05


def floored_generator(floor: float, opened: float) -> torch.nn.Module:
    """A tiny edit-mask teacher with a change everywhere and a uniform map sigmoid(z) = ``opened``."""
    generator = GENERATORS.build("autoretouch", **TINY["autoretouch"], edit_mask=True, edit_floor=floor).eval()
    torch.nn.init.normal_(generator.tail.weight, std=0.5)
    with torch.no_grad():
        generator.tail.bias[:3] = 0.3
        generator.tail.weight[3].zero_()
        generator.tail.bias[3] = float(torch.logit(torch.tensor(opened))) + 3.0  # cancels EDIT_PRIOR
    return generator


def test_edit_floor_zeroes_faint_edits_and_keeps_sure_ones() -> None:
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        faint = floored_generator(0.25, 0.2)
        assert torch.equal(faint(x)[0], x)  # sigmoid(z) = 0.2 < 0.25: exactly the input
        assert torch.equal(faint.edit_map(x), torch.zeros(1, 1, 16, 16))
        assert not torch.equal(floored_generator(0.0, 0.2)(x)[0], x)  # no floor: the faint edit stays
        half = floored_generator(0.25, 0.625).edit_map(x)  # (0.625 - 0.25) / 0.75 = 0.5
        assert torch.allclose(half, torch.full_like(half, 0.5), atol=1e-5)
        sure = floored_generator(0.25, 0.999999).edit_map(x)
        assert sure.min() > 0.999


def test_edit_floor_applies_at_inference_only() -> None:
    generator = floored_generator(0.25, 0.2).train()  # training: the plain sigmoid, every pixel has a gradient
    x = torch.rand(1, 3, 16, 16)
    rgb, _ = generator(x)
    assert not torch.equal(rgb.detach(), x)
    rgb.mean().backward()
    assert generator.tail.weight.grad[3].abs().sum() > 0
    with torch.no_grad():
        assert torch.equal(generator.eval()(x)[0], x)


@pytest.mark.parametrize("floor", [-0.1, 1.0, 1.5, "0.2", True, None])
def test_edit_floor_out_of_range_is_a_clear_error(floor: object) -> None:
    with pytest.raises(ConfigError, match=r"edit_floor = .* is out of range; valid: \[0, 1\)"):
        GENERATORS.build("autoretouch", **TINY["autoretouch"], edit_mask=True, edit_floor=floor)


def test_edit_floor_needs_an_edit_map() -> None:
    with pytest.raises(ConfigError, match="edit_floor = 0.25 needs edit_mask: true"):
        GENERATORS.build("student_fast", width=8, blocks=1, context=1, detail=4, edit_floor=0.25)


def test_edit_mask_is_a_clear_error_when_not_a_boolean() -> None:
    with pytest.raises(ConfigError, match="edit_mask must be true or false"):
        GENERATORS.build("autoretouch", **TINY["autoretouch"], edit_mask="yes")
    with pytest.raises(ConfigError, match="edit_map\\(\\) needs a generator built with edit_mask: true"):
        GENERATORS.build("autoretouch", **TINY["autoretouch"]).edit_map(torch.rand(1, 3, 8, 8))


def test_soft_mask_selects_pixels_changed_by_four_levels() -> None:
    source, target = blob_pair(4)
    soft = soft_example_mask(source, target)
    assert soft[0, 0, 7, 7] == pytest.approx(1.0)  # inside the 4-level blob: full weight
    assert soft[0, 0, 0, 0] == 0.0  # unchanged pixels: none
    hard = LOSSES.build("l1", mask="hard", outside_weight=0.0)
    with_soft = LOSSES.build("l1", mask="soft", outside_weight=0.0)
    ctx = LossContext(input=source, output=source, target=target)  # an identity model misses the blob
    assert hard(ctx).item() == 0.0  # the 30/255 rule sees no defect at all
    assert 0.6 * 4 / 255 < with_soft(ctx).item() <= 4 / 255  # the blob (and its smoothed rim) is the loss


def test_soft_weighting_upweights_the_edited_pixels() -> None:
    source, target = blob_pair(4)
    output = target.clone()
    output[..., 0, 0] = 1.0  # a big error on an unchanged pixel
    plain = LOSSES.build("l1")(LossContext(input=source, output=output, target=target)).item()
    output_miss = source.clone()  # misses the blob instead
    plain_miss = LOSSES.build("l1")(LossContext(input=source, output=output_miss, target=target)).item()
    weighted = LOSSES.build("l1", mask="soft", mask_weight=10.0)
    ratio = (weighted(LossContext(input=source, output=output_miss, target=target)).item() / plain_miss)
    assert ratio > 3.0  # missing the edited blob costs several times more than in the plain loss
    assert weighted(LossContext(input=source, output=output, target=target)).item() < plain


def test_keep_loss_counts_only_untouched_pixels() -> None:
    source, target = blob_pair(20)
    keep = LOSSES.build("keep")
    assert keep(LossContext(input=source, output=target, target=target)).item() == pytest.approx(0.0, abs=1e-7)
    harm = target.clone()
    harm[..., 0:2, 0:2] += 0.1  # repainting clean pixels is what keep punishes
    assert keep(LossContext(input=source, output=harm, target=target)).item() > 1e-3


def test_edit_map_loss_is_low_for_the_right_map_and_needs_logits() -> None:
    source, target = blob_pair(8)
    right = torch.logit(soft_example_mask(source, target).clamp(1e-4, 1 - 1e-4))  # logits of the true map
    term = LOSSES.build("edit_map")
    good = term(LossContext(input=source, output=source, target=target, pred_mask=right)).item()
    bad = term(LossContext(input=source, output=source, target=target, pred_mask=-right)).item()
    assert good < bad / 10
    with pytest.raises(ConfigError, match="edit_map.*needs 'pred_mask'"):
        term(LossContext(input=source, output=source, target=target))


@pytest.mark.parametrize("args, message", [
    ({"mask": "soft", "threshold": 0.0}, "soft mask needs threshold > 0"),
    ({"mask": "hard", "threshold": 1.5}, "threshold is a difference in \\[0, 1\\)"),
    ({"mask": "none"}, "keep mask must be one of given, hard, soft"),
])
def test_bad_defect_map_arguments_are_clear_errors(args: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LOSSES.build("keep", **args)


def test_edit_mask_network_learns_to_edit_only_the_defect() -> None:
    torch.manual_seed(0)
    generator = GENERATORS.build("autoretouch", ngf=8, n_blocks=1, norm="none", edit_mask=True)
    source, target = blob_pair(40)
    source = source + 0.02 * torch.randn(1, 1, 16, 16)  # texture the network can see, shared by the target
    target = target + (source - blob_pair(40)[0])
    terms = [LOSSES.build("l1", mask="soft", mask_weight=10.0), LOSSES.build("edit_map"), LOSSES.build("keep")]
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-2)
    for _ in range(60):
        output, logits = generator(source)
        ctx = LossContext(input=source, output=output, target=target, pred_mask=logits)
        loss = sum(term(ctx) for term in terms)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        edit = generator.edit_map(source)[0, 0]
    assert edit[7:9, 7:9].min() > 0.7  # it edits the defect
    assert edit[:3, :3].max() < 0.2 and edit[-3:, -3:].max() < 0.2  # and leaves the far corners alone
