"""The inference plan: one path for validation, `test` and `retouch`, its checks, and its out-of-memory fallback."""

from pathlib import Path

import pytest
import torch
from engine_utils import tiny_options

import gan_retouch.nets  # noqa: F401  (registers the generators)
from gan_retouch.cli import main
from gan_retouch.data import read_image
from gan_retouch.engine.checkpoint import save_checkpoint
from gan_retouch.engine.distributed import DistInfo
from gan_retouch.errors import ConfigError
from gan_retouch.evaluate.validation import Validator
from gan_retouch.imaging import tensor_to_pil
from gan_retouch.inference.plan import InferencePlan, ModelFacts, resolve_plan, training_plan
from gan_retouch.inference.run import run_plan
from gan_retouch.registry import GENERATORS

ARGS = {"ngf": 4, "n_blocks": 1, "residual": True, "edit_mask": True, "edit_floor": 0.25}


def printed(capsys: pytest.CaptureFixture) -> str:
    return " ".join(capsys.readouterr().out.split())


def photo_folder(root: Path) -> Path:
    """A folder dataset whose val and test splits hold the same 64x48 pair ``a``."""
    gradient = torch.linspace(0.2, 0.8, 64).view(1, 1, 64)
    image = (gradient + 0.15 * torch.rand(3, 48, 64, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    for split in ("val", "test"):
        for role in ("source", "target"):
            (root / split / role).mkdir(parents=True)
            tensor_to_pil(image).save(root / split / role / "a.png")
    return root


def edit_mask_net() -> torch.nn.Module:
    """The tiny edit-mask network of ``ARGS`` with weights that edit, and an edit map spread over [0, 1]."""
    net = GENERATORS.build("autoretouch", **ARGS)
    seeded = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(0.2 * torch.randn(parameter.shape, generator=seeded))
        net.tail.weight[3].normal_(0, 2.0, generator=seeded)
        net.tail.bias[3] = 3.0  # cancels the prior: the map is open around 0.5, some of it above the coarse floor
    return net.eval()


def test_validation_test_and_retouch_give_the_same_pixels(tmp_path: Path) -> None:
    data = photo_folder(tmp_path / "pairs")
    options = tiny_options(tmp_path / "ck", "data.source=folder", f"data.root={data}", "inference.work_size=32",
                           "inference.coarse_pass=true", extra={"model": {"generator": {"args": ARGS}}})
    plan = training_plan(options)
    assert plan == InferencePlan(work_size=32, coarse_pass=True, edit_floor=0.25)  # smaller than the 64 px image
    net = edit_mask_net()
    source = read_image(data / "test" / "source" / "a.png")[None]
    with_coarse, without = run_plan(plan, net, source), run_plan(InferencePlan(work_size=32, edit_floor=0.25), net, source)
    assert (with_coarse - without).abs().max() > 4 / 255  # the coarse pass changes this image: a skipped one shows

    Validator.from_options(options, torch.device("cpu"), DistInfo()).write_samples(net, 1, tmp_path / "run", {})
    (validated,) = (tmp_path / "run" / "web" / "images").glob("*_output.png")
    entry = {"name": "autoretouch", "args": ARGS, "state_dict": net.state_dict()}
    checkpoint = save_checkpoint({"kind": "train", "options": options, "generator": entry,
                                  "inference": plan.to_dict()}, tmp_path / "m" / "best.pt")
    assert main(["test", "--checkpoint", str(checkpoint), "--data", str(data), "--device", "cpu",
                 "--set", f"results_root={tmp_path / 'r'}", "test.lpips=false"]) == 0
    (tested,) = (tmp_path / "r").rglob("0000_a_m-best.png")
    assert main(["retouch", str(data / "test" / "source" / "a.png"), "-o", str(tmp_path / "out"),
                 "--checkpoint", str(checkpoint), "--device", "cpu"]) == 0
    retouched = tmp_path / "out" / "a.png"
    expected = with_coarse[0]
    for written in (validated, tested, retouched):
        assert (read_image(written) - expected).abs().max() <= 1 / 255 + 1e-6, written  # 8-bit rounding only


def test_impossible_combinations_are_one_clear_error() -> None:
    masked, plain = ModelFacts(edit_map=True, source="m.pt"), ModelFacts(edit_map=False, stride=4, source="p.pt")
    own = InferencePlan(edit_floor=0.25)
    cases = [
        (own, {"edit_floor": 0.5, "backend": "onnxruntime"}, masked, "cpu",
         "retouch.edit_floor changes the PyTorch model, but an ONNX export has its floor built in"),
        (own, {"coarse_pass": True, "backend": "onnxruntime"}, masked, "cpu",
         r"retouch.coarse_pass is on \(as asked\): its first pass raises the edit map's floor"),
        (InferencePlan(coarse_pass=True), {"backend": "onnxruntime"}, masked, "cpu",
         r"retouch.coarse_pass is on \(m.pt runs it unless told\): .* use --set retouch.backend=torch"),
        (own, {"precision": "fp16"}, masked, "cpu", "retouch.precision=fp16 needs a CUDA device; use fp32 on cpu"),
        (own, {"precision": "bf16", "backend": "onnxruntime"}, masked, "cuda",
         "retouch.backend=onnxruntime runs the fp32 export"),
        (InferencePlan(), {"edit_floor": 0.3}, plain, "cpu",
         "retouch.edit_floor needs a model with an edit map; p.pt was trained without"),
        (InferencePlan(), {"strength": 1.5}, plain, "cpu", r"retouch.strength = 1.5 is out of range; valid: \[0, 1\]"),
        (InferencePlan(), {"edit_floor": 1.0}, masked, "cpu", r"retouch.edit_floor = 1.0 is out of range; valid: \[0, 1\)"),
        (InferencePlan(), {"tile": 70, "tile_overlap": 34}, ModelFacts(edit_map=False, stride=64), "cpu",
         r"retouch.tile=70 must exceed retouch.tile_overlap \(34\) by at least the network's stride \(64\)"),
        (InferencePlan(), {"memory_mb": 0}, plain, "cpu", "retouch.memory_mb must be a positive number"),
    ]
    for saved, settings, facts, device, message in cases:
        with pytest.raises(ConfigError, match=message):
            resolve_plan(saved, settings, "retouch", facts, device)
    assert resolve_plan(own, {"edit_floor": 0.5, "backend": "auto"}, "retouch", masked).backend == "torch"
    assert resolve_plan(own, {"edit_floor": 0.25, "backend": "onnxruntime"}, "retouch", masked).backend == "onnxruntime"
    assert resolve_plan(own, {"edit_floor": None}, "retouch", masked).edit_floor == 0.25  # None keeps the model's


class RunsOutOfMemoryOnLargeInputs(torch.nn.Module):
    """Adds 0.1 to its input; raises out of memory above ``limit`` pixels, as a GPU would."""

    stride = 1

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.sizes: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(tuple(x.shape[-2:]))
        if x.shape[-2] * x.shape[-1] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (a stand-in)")
        return (x + 0.1).clamp(0, 1)


def test_out_of_memory_runs_again_in_tiles_and_says_so(capsys: pytest.CaptureFixture) -> None:
    network = RunsOutOfMemoryOnLargeInputs(limit=600 * 600)
    images = torch.rand(1, 3, 700, 1100) * 0.5
    out = run_plan(InferencePlan(tile_overlap=32), network, images)
    assert torch.allclose(out, images + 0.1, atol=1e-6)  # the tiles blend back to the whole image's result
    assert network.sizes[0] == (700, 1100) and max(h * w for h, w in network.sizes[1:]) <= 512 * 512
    assert "out of memory on a 1100x700 image (whole): running it again in tiles of 512 px" in printed(capsys)
    with pytest.raises(torch.OutOfMemoryError):
        run_plan(InferencePlan(tile_overlap=32), RunsOutOfMemoryOnLargeInputs(limit=100), images, fallback=False)
    with pytest.raises(Exception, match="out of memory on a 1100x700 image even in tiles of 256 px"):
        run_plan(InferencePlan(tile_overlap=32), RunsOutOfMemoryOnLargeInputs(limit=100), images)
