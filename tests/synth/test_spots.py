"""Red spots on face skin are found by their size and redness, and toned down without touching other pixels."""

import torch

from gan_retouch.synth.spots import red_spots, to_lab, tone_down_spots


def _skin_with_spots(size: int = 128) -> tuple[torch.Tensor, list[tuple[int, int, int]]]:
    """Even skin with a fine lightness texture, two red spots of 6 px and one large red patch (a lip-sized area)."""
    generator = torch.Generator().manual_seed(0)
    skin = torch.tensor([0.86, 0.66, 0.55])[:, None, None].expand(3, size, size).clone()
    skin *= 1.0 + 0.02 * torch.randn(1, size, size, generator=generator)
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    spots = [(30, 30, 3), (90, 40, 3), (64, 100, 22)]
    for cy, cx, radius in spots:
        inside = ((ys - cy) ** 2 + (xs - cx) ** 2 <= radius**2).float()
        skin[1] -= 0.12 * inside  # less green: redder
        skin[2] -= 0.08 * inside
    return skin.clamp(0, 1), spots


def test_small_red_spots_are_found_and_a_large_red_area_is_not() -> None:
    image, spots = _skin_with_spots()
    found, excess = red_spots(to_lab(image), torch.ones(128, 128).numpy(), face_width=400.0)
    for cy, cx, _ in spots[:2]:
        assert found[cy, cx] and excess[cy, cx] > 4
    cy, cx, _ = spots[2]
    assert not found[cy, cx]  # 11 % of the face width: lips or a flushed cheek, not acne


def test_tone_down_reduces_the_redness_of_spots_and_leaves_the_rest_exactly() -> None:
    image, spots = _skin_with_spots()
    cleaned, soft = tone_down_spots(image, torch.ones(1, 128, 128), face_width=400.0)
    before, after = to_lab(image), to_lab(cleaned)
    for cy, cx, _ in spots[:2]:
        assert after[cy, cx, 1] < before[cy, cx, 1] - 3  # a* of the spot fell
    untouched = soft[0] == 0
    assert untouched.float().mean() > 0.9 and torch.equal(cleaned[:, untouched], image[:, untouched])
    texture = (cleaned - image)[0].abs().amax()
    assert texture < 0.2


def test_nothing_to_tone_down_returns_the_image_itself() -> None:
    image = torch.tensor([0.86, 0.66, 0.55])[:, None, None].expand(3, 64, 64).clone()
    cleaned, soft = tone_down_spots(image, torch.ones(1, 64, 64), face_width=200.0)
    assert cleaned is image and float(soft.sum()) == 0.0


def test_a_cluster_of_spots_is_toned_down_and_a_spot_on_the_skin_edge_is_not() -> None:
    size = 128
    image = torch.tensor([0.86, 0.66, 0.55])[:, None, None].expand(3, size, size).clone()
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    cluster = [(cy, cx) for cy in (58, 64, 70) for cx in (58, 64, 70)]  # nine papules 6 px apart: acne clusters
    for cy, cx in [*cluster, (30, 6)]:
        inside = ((ys - cy) ** 2 + (xs - cx) ** 2 <= 6).float()
        image[1] -= 0.12 * inside
        image[2] -= 0.08 * inside
    skin = torch.zeros(1, size, size)
    skin[:, :, 4:] = 1.0  # the skin starts at x = 4: the spot at x = 4-8 touches its edge
    cleaned, _ = tone_down_spots(image.clamp(0, 1), skin, face_width=200.0)
    before, after = to_lab(image.clamp(0, 1)), to_lab(cleaned)
    for cy, cx in cluster:
        assert after[cy, cx, 1] < before[cy, cx, 1] - 3
    assert (after[26:35, :14, 1] == before[26:35, :14, 1]).all()  # no part of it


def _even_skin(size: int = 128) -> torch.Tensor:
    return torch.tensor([0.86, 0.66, 0.55])[:, None, None].expand(3, size, size).clone()


def _redden(image: torch.Tensor, inside: torch.Tensor, amount: float) -> None:
    image[1] -= amount * inside
    image[2] -= 0.66 * amount * inside


def test_healing_is_graded_by_redness_so_look_alike_spots_are_treated_alike() -> None:
    image = _even_skin()
    ys, xs = torch.meshgrid(torch.arange(128), torch.arange(128), indexing="ij")
    faint, strong = [((ys - 40) ** 2 + (xs - x) ** 2 <= 6).float() for x in (40, 90)]
    _redden(image, faint, 0.03)
    _redden(image, strong, 0.12)
    excess = {}
    cleaned, weight = tone_down_spots(image, torch.ones(1, 128, 128), face_width=400.0)
    for name, x in (("faint", 40), ("strong", 90)):
        before, after = to_lab(image)[40, x, 1], to_lab(cleaned)[40, x, 1]
        excess[name] = (before - to_lab(image)[5, 5, 1], after - to_lab(cleaned)[5, 5, 1])
    assert 2.0 < excess["faint"][0] < 5.0 and excess["strong"][0] > 5.0
    assert 0.0 < float(weight[0, 40, 40]) < 1.0 and float(weight[0, 40, 90]) > 0.99
    assert excess["strong"][1] < 1.0  # all of a strong spot's redness removed
    assert 0.0 < excess["faint"][1] < excess["faint"][0]  # some of a faint one's


def test_a_thin_red_edge_is_not_a_spot_though_as_long_as_a_spot_is_wide() -> None:
    image = _even_skin()
    line = torch.zeros(128, 128)
    line[10:28, 64:66] = 1.0  # 18 x 2 px: within a spot's size at this face width, but thin (a shading edge)
    _redden(image, line, 0.12)
    cleaned, weight = tone_down_spots(image, torch.ones(1, 128, 128), face_width=400.0)
    assert float(weight.sum()) == 0.0 and torch.equal(cleaned, image)
    line[10:28, 62:68] = 1.0  # 18 x 6 px: compact enough to be a papule
    _redden(image, line, 0.12)
    _, weight = tone_down_spots(image.clamp(0, 1), torch.ones(1, 128, 128), face_width=400.0)
    assert float(weight[0, 18, 64]) > 0.99
