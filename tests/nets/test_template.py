"""The template network (nets/template.py, built on ``with_head``): every head form runs every inference plan,
and the export command writes it as ONNX and TorchScript with the parity check passing."""

from pathlib import Path

import pytest
import torch

import gan_retouch.nets  # noqa: F401  (registers the generators)
from gan_retouch.cli import main
from gan_retouch.engine.checkpoint import save_checkpoint
from gan_retouch.inference.plan import InferencePlan
from gan_retouch.inference.run import run_plan
from gan_retouch.registry import GENERATORS

FORMS = {"plain": {}, "residual": {"residual": True}, "edit_mask": {"edit_mask": True}}
PLANS = {
    "native": InferencePlan(),
    "work_size": InferencePlan(work_size=32),
    "tiles": InferencePlan(tile=24, tile_overlap=4),
    "strength": InferencePlan(strength=0.5),
}
EDIT_MAP_PLANS = {"coarse_pass": InferencePlan(coarse_pass=True), "floor": InferencePlan(edit_floor=0.2)}


def template(**args: object) -> torch.nn.Module:
    """A tiny template network with random non-zero weights, its edit map opened (a fresh one is the identity)."""
    network = GENERATORS.build("template", width=4, **args)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
        if network.edit_mask:
            network.open_edit_map(3.0)
    return network.eval()


def test_a_fresh_residual_template_is_the_identity() -> None:
    image = torch.rand(1, 3, 21, 17)
    assert torch.equal(GENERATORS.build("template", width=4, residual=True).eval()(image), image)


@pytest.mark.parametrize("form", list(FORMS))
def test_every_form_runs_every_plan(form: str) -> None:
    network = template(**FORMS[form])
    image = torch.rand(2, 3, 45, 38)  # odd sizes: padded to the stride and cropped back
    plans = {**PLANS, **(EDIT_MAP_PLANS if network.edit_mask else {})}
    outputs = {name: run_plan(plan, network, image) for name, plan in plans.items()}
    for name, output in outputs.items():
        assert output.shape == image.shape, name
        assert 0.0 <= output.min() and output.max() <= 1.0, name
        assert (output - image).abs().max() > 1e-2, f"{name}: the network changes the image"
    full = outputs["native"]
    assert torch.allclose(outputs["strength"], (image + 0.5 * (full - image)).clamp(0, 1), atol=1e-6)
    if network.edit_mask:  # a floor only removes faint edits: never more change than without it
        assert (outputs["floor"] - image).abs().sum() < (full - image).abs().sum()


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_the_export_command_writes_the_template(fmt: str, tmp_path: Path) -> None:
    args = {"width": 4, "edit_mask": True}
    network = template(edit_mask=True)
    entry = {"name": "template", "args": args, "state_dict": network.state_dict()}
    checkpoint = save_checkpoint({"kind": "train", "options": {}, "generator": entry}, tmp_path / "template.pt")
    out = tmp_path / f"template.{fmt}"
    assert main(["export", "--checkpoint", str(checkpoint), "--format", fmt, "--out", str(out),
                 "--set", "export.check_sizes=[[1,33,29]]"]) == 0
    assert out.is_file() and out.stat().st_size > 0
