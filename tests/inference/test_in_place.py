"""The plan's blends work in place (no full-size temporaries), but never on the input or on a tensor torch refuses
to change (an inference-mode output, as backends return)."""

import torch

from gan_retouch.inference.face_scale import protect_features
from gan_retouch.inference.plan import InferencePlan
from gan_retouch.inference.run import apply_plan
from gan_retouch.synth.faces import Face


def test_strength_blend_leaves_the_input_and_inference_tensors_alone() -> None:
    images = torch.rand(1, 3, 16, 16)
    before = images.clone()
    plan = InferencePlan(strength=0.5)
    assert torch.equal(apply_plan(plan, lambda x, m, f: x, images), before)  # a network that hands its input back
    assert torch.equal(images, before)
    with torch.inference_mode():
        edited = torch.rand(1, 3, 16, 16)
    blended = apply_plan(plan, lambda x, m, f: edited, images)
    assert torch.equal(blended, (images + 0.5 * (edited - images)).clamp(0, 1))
    fresh = torch.rand(1, 3, 16, 16)
    expected = (images + 0.5 * (fresh - images)).clamp(0, 1)
    assert torch.equal(apply_plan(plan, lambda x, m, f: fresh.clone(), images), expected)  # in place, same values


def test_feature_protection_in_place_gives_the_same_values() -> None:
    image, output = torch.rand(1, 3, 40, 32), torch.rand(1, 3, 40, 32)
    face = Face(4.0, 6.0, 24.0, 30.0)
    from gan_retouch.synth.faces import features_region

    expected = output + (image - output) * features_region([face], 40, 32)
    assert torch.equal(protect_features(output.clone(), image, face), expected)
    before = image.clone()
    protect_features(image, image, face)
    assert torch.equal(image, before)
