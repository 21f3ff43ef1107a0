"""Loss terms: GAN sides against hand-computed values, feature matching, pixel/mask terms, SSIM, Dice, registry."""

import math

import pytest
import torch
from pytorch_msssim import ms_ssim, ssim

import gan_retouch.losses  # noqa: F401  (registers the losses)
from gan_retouch.cli import main
from gan_retouch.errors import ConfigError, DataError
from gan_retouch.losses.base import LossContext, WeightedLosses
from gan_retouch.losses.masks import hard_example_mask
from gan_retouch.registry import LOSSES


def context(**fields) -> LossContext:
    shape = (1, 3, 4, 4)
    base = {"input": torch.zeros(shape), "output": torch.zeros(shape), "target": torch.zeros(shape)}
    return LossContext(**{**base, **fields})


def disc_output(*logits: float) -> list[list[torch.Tensor]]:
    """One scale per value: a dummy feature map and a 1x1 patch logit."""
    return [[torch.zeros(1, 2, 2, 2), torch.tensor([[[[v]]]])] for v in logits]


def bce(logit: float, label: float) -> float:
    p = 1 / (1 + math.exp(-logit))
    return -(label * math.log(p) + (1 - label) * math.log(1 - p))


# two scales: D(fake) = 0.5 and -2.0; D(real) = 1.5 and 0.3
G_EXPECTED = {
    "vanilla": (bce(0.5, 1) + bce(-2.0, 1)) / 2,
    "lsgan": ((0.5 - 1) ** 2 + (-2.0 - 1) ** 2) / 2,
    "hinge": (-0.5 + 2.0) / 2,
}
D_EXPECTED = {
    "vanilla": ((bce(1.5, 1) + bce(0.5, 0)) + (bce(0.3, 1) + bce(-2.0, 0))) / 2,
    "lsgan": (((1.5 - 1) ** 2 + 0.5**2) + ((0.3 - 1) ** 2 + (-2.0) ** 2)) / 2,
    "hinge": ((max(0, 1 - 1.5) + max(0, 1 + 0.5)) + (max(0, 1 - 0.3) + max(0, 1 - 2.0))) / 2,
}


@pytest.mark.parametrize("mode", ["vanilla", "lsgan", "hinge"])
def test_gan_generator_side_matches_hand_values(mode: str) -> None:
    term = LOSSES.build("gan", mode=mode)
    assert term.needs_discriminator
    value = term(context(fake=disc_output(0.5, -2.0)))
    assert value.item() == pytest.approx(G_EXPECTED[mode], rel=1e-6)


@pytest.mark.parametrize("mode", ["vanilla", "lsgan", "hinge"])
def test_gan_discriminator_side_matches_hand_values(mode: str) -> None:
    term = LOSSES.build("gan", mode=mode)
    value = term.discriminator_loss(disc_output(1.5, 0.3), disc_output(0.5, -2.0))
    assert value.item() == pytest.approx(D_EXPECTED[mode], rel=1e-6)


def test_gan_mode_typo_names_the_closest() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'hinge'"):
        LOSSES.build("gan", mode="hinje")


def test_gan_without_discriminator_output_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="needs 'fake'"):
        LOSSES.build("gan")(context())


def test_feature_matching_is_l1_over_features_layers_and_scales() -> None:
    real = [[torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 1, 1)]] * 2
    fake = [[torch.full((1, 1, 2, 2), 1.0), torch.full((1, 1, 2, 2), 3.0), torch.zeros(1, 1, 1, 1)],
            [torch.full((1, 1, 2, 2), 2.0), torch.full((1, 1, 2, 2), 2.0), torch.zeros(1, 1, 1, 1)]]
    value = LOSSES.build("feature_matching")(context(fake=fake, real=real))
    assert value.item() == pytest.approx(((1 + 3) / 2 + (2 + 2) / 2) / 2)  # logits ignored


def test_pixel_terms_hand_values() -> None:
    output, target = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    output[:, :, 0, 0] = 0.5  # 3 of 48 values off by 0.5
    ctx = context(output=output, target=target)
    assert LOSSES.build("mse")(ctx).item() == pytest.approx(3 * 0.25 / 48)
    assert LOSSES.build("l1")(ctx).item() == pytest.approx(3 * 0.5 / 48)
    charbonnier = LOSSES.build("charbonnier", eps=0.1)(ctx).item()
    assert charbonnier == pytest.approx((3 * math.sqrt(0.25 + 0.01) + 45 * 0.1) / 48)
    psnr = -10 * math.log10(3 * 0.25 / 48)
    assert LOSSES.build("psnr")(ctx).item() == pytest.approx(-psnr, rel=1e-5)


def test_hard_mask_is_per_pixel_max_over_channels() -> None:
    x, y = torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    x[0, 1, 0, 0] = 31 / 255  # above 30/255 in one channel only
    x[0, :, 1, 1] = 29 / 255  # below in every channel
    assert hard_example_mask(x, y).tolist() == [[[[1.0, 0.0], [0.0, 0.0]]]]


def test_mask_weighting_restricts_and_upweights() -> None:
    output, target = torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    output[..., 0, 0], output[..., 1, 1] = 1.0, 0.5
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    ctx = context(output=output, target=target, input=target, mask=mask)
    inside_only = LOSSES.build("l1", mask="given", outside_weight=0.0)(ctx)
    assert inside_only.item() == pytest.approx(1.0)
    weighted = LOSSES.build("l1", mask="given", mask_weight=10.0)(ctx)
    assert weighted.item() == pytest.approx((10 * 1.0 + 0.5) / (10 + 3))
    hard_input = target.clone()
    hard_input[..., 1, 1] = 0.9  # the hard mask picks the pixel where input and target differ
    hard = LOSSES.build("mse", mask="hard", outside_weight=0.0)(context(output=output, target=target, input=hard_input))
    assert hard.item() == pytest.approx(0.25)
    with pytest.raises(ConfigError, match="needs 'mask'"):
        LOSSES.build("l1", mask="given", mask_weight=2.0)(context())


def test_masked_psnr_uses_the_weighted_mse() -> None:
    output, target = torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    output[..., 0, 0] = 0.1
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    value = LOSSES.build("psnr", mask="given", outside_weight=0.0)(context(output=output, target=target, mask=mask))
    assert value.item() == pytest.approx(-20.0, rel=1e-5)  # MSE 0.01 inside the mask


def test_color_loss_ignores_texture_but_sees_tint() -> None:
    target = torch.full((1, 3, 32, 32), 0.5)
    checker = ((torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2).float() * 0.2 - 0.1
    term = LOSSES.build("color")
    assert term(context(output=target, target=target)).item() == 0.0
    texture = term(context(output=target + checker, target=target)).item()
    tint = term(context(output=target + torch.tensor([0.1, 0.0, 0.0]).view(1, 3, 1, 1), target=target)).item()
    assert tint > 10 * texture


def test_ssim_and_msssim_agree_with_pytorch_msssim() -> None:
    a = torch.rand(1, 3, 162, 164)
    b = (a + 0.1 * torch.randn_like(a)).clamp(0, 1)
    ctx = context(output=b, target=a)
    assert LOSSES.build("ssim")(ctx).item() == pytest.approx(1 - ssim(b, a, data_range=1.0).item(), abs=1e-6)
    assert LOSSES.build("msssim")(ctx).item() == pytest.approx(1 - ms_ssim(b, a, data_range=1.0).item(), abs=1e-6)


def test_msssim_on_small_images_uses_fewer_scales() -> None:
    a = torch.rand(1, 3, 20, 24)
    b = (a + 0.1 * torch.randn_like(a)).clamp(0, 1)
    one_scale = 1 - ssim(b, a, data_range=1.0).item()
    assert LOSSES.build("msssim")(context(output=b, target=a)).item() == pytest.approx(one_scale, abs=1e-6)
    assert LOSSES.build("msssim")(context(output=a, target=a)).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(DataError, match="MS-SSIM"):
        LOSSES.build("msssim")(context(output=a[..., :8, :8], target=b[..., :8, :8]))


def test_score_combines_psnr_and_msssim() -> None:
    a = torch.rand(1, 3, 48, 48)
    b = (a + 0.05 * torch.randn_like(a)).clamp(0, 1)
    ctx = context(output=b, target=a)
    expected = LOSSES.build("msssim")(ctx) + LOSSES.build("psnr")(ctx) / 50.0
    assert LOSSES.build("score")(ctx).item() == pytest.approx(expected.item(), rel=1e-6)


def test_dice_and_bce_on_known_masks() -> None:
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1.0  # 8 pixels
    prediction = torch.zeros(1, 1, 4, 4)
    prediction[..., 1:3, :] = 1.0  # 8 pixels, 4 overlapping
    logits = (prediction * 2 - 1) * 50.0  # sigmoid is exactly 0 or 1
    ctx = context(pred_mask=logits, mask=mask)
    assert LOSSES.build("dice", smooth=0.0)(ctx).item() == pytest.approx(1 - 2 * 4 / 16)
    assert LOSSES.build("dice", smooth=0.0)(context(pred_mask=(mask * 2 - 1) * 50, mask=mask)).item() == 0.0
    assert LOSSES.build("dice")(context(pred_mask=torch.full((1, 1, 4, 4), -50.0), mask=0 * mask)).item() == 0.0
    assert LOSSES.build("mask_bce")(ctx).item() == pytest.approx(8 * 50 / 16, rel=1e-4)  # 8 wrong pixels


def test_weighted_losses_from_a_recipe_mapping() -> None:
    losses = WeightedLosses({"l1": {"weight": 2.0, "mask": "hard", "mask_weight": 10.0},
                             "extra": {"type": "mse", "weight": 0.5}})
    output = torch.full((1, 3, 4, 4), 0.2)
    total, values = losses(context(output=output))
    assert set(values) == {"l1", "extra"}
    assert total.item() == pytest.approx(2.0 * 0.2 + 0.5 * 0.04)


def test_unknown_loss_and_argument_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'charbonnier'.*Available: .*msssim"):
        LOSSES.build("charbonier")
    with pytest.raises(ConfigError, match="no argument 'mask_weigth'.*Did you mean 'mask_weight'"):
        LOSSES.build("l1", mask_weigth=3.0)
    with pytest.raises(ConfigError, match="ssim has no argument 'mask'|'ssim' has no argument 'mask'"):
        LOSSES.build("ssim", mask="hard")
    with pytest.raises(ConfigError, match="mask must be one of none, given, hard, soft"):
        LOSSES.build("mse", mask="fuzzy")


def test_train_list_shows_every_component(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--list"]) == 0
    shown = capsys.readouterr().out
    for name in ("autoretouch", "pix2pix_resnet", "pix2pix_unet", "resunet", "u2net_lite", "gated", "patchgan",
                 "multiscale", "gan", "feature_matching", "vgg", "lpips", "mse", "l1", "charbonnier", "psnr",
                 "ssim", "msssim", "score", "color", "mask_bce", "dice", "keep", "edit_map"):
        assert name in shown


@pytest.mark.parametrize("term", ["msssim", "ssim", "color"])
def test_loss_gradients_under_bf16_autocast_match_float32(term: str) -> None:
    """The engine runs its loss terms under the networks' autocast: the terms must still compute in float32
    (in bf16, E[x^2] - mu^2 cancels: MS-SSIM's gradient kept a cosine of 0.6 with the float32 one here)."""
    from gan_retouch.engine.precision import Precision

    torch.manual_seed(0)
    target = torch.rand(2, 3, 64, 64)
    start = (target + 0.005 * torch.randn_like(target)).clamp(0, 1)
    losses = WeightedLosses({term: {}})

    def gradient(amp_dtype: torch.dtype | None) -> torch.Tensor:
        output = start.clone().requires_grad_(True)
        with Precision(amp_dtype, False, False, False).autocast(torch.device("cpu")):
            total, values = losses(LossContext(input=target, output=output, target=target))
        assert total.dtype == values[term].dtype == torch.float32
        total.backward()
        return output.grad.flatten()

    cosine = torch.nn.functional.cosine_similarity(gradient(None), gradient(torch.bfloat16), dim=0)
    assert cosine > 0.99


def test_vgg_features_run_under_the_callers_autocast_and_its_distance_in_float32() -> None:
    losses = WeightedLosses({})
    losses.terms["vgg"], losses.weights["vgg"] = LOSSES.build("vgg", weights="random"), 1.0
    seen = []
    losses.terms["vgg"].slices[0].register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    images = torch.rand(1, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        total, _ = losses(context(output=images, target=images * 0.9))
    assert seen == [torch.bfloat16, torch.bfloat16]  # output and target features
    assert total.dtype == torch.float32 and torch.isfinite(total)
