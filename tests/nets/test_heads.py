"""The shared output head: the floor as an argument of each call, and a foreign backbone plugged in by with_head."""

import inspect
from pathlib import Path

import pytest
import torch
from torch import nn

import gan_retouch.nets  # noqa: F401  (registers the generators)
from gan_retouch.deploy.export import export_model
from gan_retouch.errors import ConfigError
from gan_retouch.inference.plan import InferencePlan
from gan_retouch.inference.run import run_plan
from gan_retouch.nets.backbone import with_head
from gan_retouch.nets.base import run_generator
from gan_retouch.registry import GENERATORS, Registry


class NAFBlock(nn.Module):
    """A NAFNet block (Chen et al. 2022): norm, 1x1, depthwise 3x3, simple gate, channel attention, 1x1; then a
    gated feed-forward part; both added back with learned scales."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.GroupNorm(1, channels), nn.GroupNorm(1, channels)
        self.expand = nn.Conv2d(channels, 2 * channels, 1)
        self.depthwise = nn.Conv2d(2 * channels, 2 * channels, 3, padding=1, groups=2 * channels)
        self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, channels, 1))
        self.project = nn.Conv2d(channels, channels, 1)
        self.ffn_in, self.ffn_out = nn.Conv2d(channels, 2 * channels, 1), nn.Conv2d(channels, channels, 1)
        self.beta = nn.Parameter(torch.full((1, channels, 1, 1), 0.5))
        self.gamma = nn.Parameter(torch.full((1, channels, 1, 1), 0.5))

    @staticmethod
    def gate(x: torch.Tensor) -> torch.Tensor:
        first, second = x.chunk(2, dim=1)
        return first * second

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gate(self.depthwise(self.expand(self.norm1(x))))
        x = x + self.beta * self.project(y * self.attention(y))
        return x + self.gamma * self.ffn_out(self.gate(self.ffn_in(self.norm2(x))))


class TinyNAFNet(nn.Module):
    """A NAFNet-style backbone from another codebase: raw channels out, no residual, edit map or floor of its own."""

    def __init__(self, out_channels: int, width: int = 8, blocks: int = 2) -> None:
        super().__init__()
        self.intro = nn.Conv2d(3, width, 3, padding=1)
        self.body = nn.Sequential(*[NAFBlock(width) for _ in range(blocks)])
        self.output_layer = nn.Conv2d(width, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_layer(self.body(self.intro(x)))


NAFGenerator = with_head(TinyNAFNet)


def test_a_foreign_backbone_gets_the_three_output_forms_without_writing_them() -> None:
    assert list(inspect.signature(NAFGenerator).parameters) == ["width", "blocks", "residual", "edit_mask", "edit_floor"]
    registry = Registry("generator")
    registry.register("tiny_nafnet")(NAFGenerator)
    with pytest.raises(ConfigError, match="has no argument 'widht'. Did you mean 'width'"):
        registry.build("tiny_nafnet", widht=8)
    x = torch.rand(2, 3, 20, 28)
    residual = registry.build("tiny_nafnet", width=8, residual=True).eval()
    assert torch.equal(residual(x), x)  # a fresh residual network is exactly the identity
    masked = registry.build("tiny_nafnet", width=8, edit_mask=True, edit_floor=0.3).eval()
    rgb, logits = masked(x)
    assert torch.equal(rgb, x) and logits.shape == (2, 1, 20, 28) and masked.backbone.output_layer.out_channels == 4
    assert torch.allclose(masked.edit_map(x, floor=0.0), torch.full_like(logits, 0.0474), atol=1e-3)
    plain = registry.build("tiny_nafnet", width=8).eval()
    out = plain(x)
    assert out.min() >= 0 and out.max() <= 1 and not torch.allclose(out, x, atol=1e-2)
    assert all(key.startswith("backbone.") for key in plain.state_dict())
    with pytest.raises(ConfigError, match="edit_floor = 0.3 needs edit_mask: true"):
        registry.build("tiny_nafnet", edit_floor=0.3)


def test_the_floor_is_an_argument_and_the_network_keeps_its_own() -> None:
    net = NAFGenerator(width=8, edit_mask=True, edit_floor=0.25).eval()
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    x = torch.rand(1, 3, 24, 24)
    own = run_generator(net, x)[0]
    assert torch.equal(run_generator(net, x, floor=0.25)[0], own)
    raised = run_generator(net, x, floor=0.9)[0]
    assert (raised - x).abs().sum() < (own - x).abs().sum()  # a higher floor leaves more pixels at the input
    assert net.edit_floor == 0.25  # unchanged: nothing is mutated to raise it
    with pytest.raises(AttributeError):
        net.edit_floor = 0.5  # read-only: a floor for one run goes through the call (or the plan)
    with pytest.raises(ConfigError, match="an edit floor .* needs a model with an edit map"):
        GENERATORS.build("autoretouch", ngf=4, n_blocks=1)(x, floor=0.3)


def test_a_plugged_in_backbone_runs_every_plan_and_exports(tmp_path: Path) -> None:
    net = NAFGenerator(width=8, edit_mask=True, edit_floor=0.2).eval()
    with torch.no_grad():
        net.backbone.output_layer.weight.normal_(0, 0.3)
        net.backbone.output_layer.bias[3] = 3.0
    x = torch.rand(1, 3, 80, 60)
    out = run_plan(InferencePlan(work_size=40, coarse_pass=True, edit_floor=0.2, tile=None), net, x)
    assert out.shape == x.shape and (out - x).abs().max() > 1e-3
    results = export_model(net, "torchscript", tmp_path / "naf.ts", check_sizes=[[1, 33, 35]])
    assert max(r["max_abs_diff"] for r in results) < 1e-4


OPENABLE = {
    "autoretouch": {"ngf": 4, "n_blocks": 1}, "pix2pix_resnet": {"ngf": 4, "n_blocks": 1},
    "pix2pix_unet": {"ngf": 4, "num_downs": 3}, "resunet": {"filters": [4, 8, 8], "kernels": [7, 3, 3]},
    "gated": {"ngf": 4, "dilations": [2]}, "student": {"width": 4, "depth": 1, "levels": 2},
    "student_fast": {"width": 8, "blocks": 1, "context": 1, "detail": 8, "detail_blocks": 0},
}


@pytest.mark.parametrize("name", sorted(OPENABLE))
def test_opening_the_edit_map_adds_the_offset_to_every_logit(name: str) -> None:
    """init_open_map: the offset lands on the edit-map logit of every pixel and on nothing else."""
    torch.manual_seed(0)
    generator = GENERATORS.build(name, **OPENABLE[name], residual=True, edit_mask=True).eval()
    for parameter in generator.parameters():  # off the zero start, so that the image depends on the map
        parameter.data.add_(0.05 * torch.randn_like(parameter))
    x, mask = torch.rand(1, 3, 37, 50), torch.zeros(1, 1, 37, 50)
    with torch.no_grad():
        rgb, logits = generator(x, mask, 0.0)
        generator.open_edit_map(1.5)
        opened_rgb, opened = generator(x, mask, 0.0)
    torch.testing.assert_close(opened - logits, torch.full_like(logits, 1.5), atol=1e-4, rtol=0)
    assert (opened_rgb - x).abs().sum() > (rgb - x).abs().sum()  # a wider map: a larger edit


def test_a_network_without_an_edit_map_cannot_be_opened() -> None:
    with pytest.raises(ConfigError, match="edit_mask: true"):
        GENERATORS.build("autoretouch", ngf=4, n_blocks=1, residual=True).open_edit_map(1.0)
    with pytest.raises(ConfigError, match="edit_mask: true"):
        NAFGenerator(residual=True).open_edit_map(1.0)
    NAFGenerator(residual=True, edit_mask=True).open_edit_map(1.0)  # a plugged-in backbone's output_layer is found
