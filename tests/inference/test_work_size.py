"""Working size: the edit is computed at the scale a model learned and applied at full resolution."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from engine_utils import tiny_options

import gan_retouch.nets  # noqa: F401  (registers the generators)
from gan_retouch.cli import main
from gan_retouch.config import resolve
from gan_retouch.data import read_image
from gan_retouch.engine.checkpoint import load_checkpoint, load_generator, save_checkpoint
from gan_retouch.engine.distributed import DistInfo
from gan_retouch.errors import CheckpointError, ConfigError
from gan_retouch.evaluate.validation import Validator
from gan_retouch.imaging import tensor_to_pil
from gan_retouch.inference.plan import (
    InferencePlan,
    ModelFacts,
    check_plan,
    overridden,
    resolve_plan,
    training_plan,
)
from gan_retouch.inference.run import run_plan
from gan_retouch.inference.work_size import COARSE_FLOOR, at_work_size, coarse_to_fine, work_shape
from gan_retouch.nets.base import run_generator
from gan_retouch.registry import GENERATORS
from gan_retouch.train import build_training


def printed(capsys: pytest.CaptureFixture) -> str:
    """What the command printed, with rich's line wrapping undone."""
    return " ".join(capsys.readouterr().out.split())


def test_small_images_run_as_they_are_and_large_ones_at_the_work_size() -> None:
    seen = []

    def brighten_left_half(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        seen.append(tuple(x.shape[-2:]))
        out = x.clone()
        out[..., : x.shape[-1] // 2] += 0.1
        return out

    image = torch.rand(1, 3, 60, 80) * 0.5
    assert torch.equal(at_work_size(brighten_left_half, image, None, 80), brighten_left_half(image, None))
    assert seen[0] == (60, 80) and work_shape(60, 80, None) == (60, 80)
    out = at_work_size(brighten_left_half, image, None, 40)
    assert seen[-1] == (30, 40) == work_shape(60, 80, 40)
    # The edit is upscaled and added: +0.1 on the left, the right half keeps every original pixel exactly.
    assert torch.allclose(out[..., :36], image[..., :36] + 0.1, atol=1e-6)
    assert torch.equal(out[..., 44:], image[..., 44:])
    # A network that changes nothing leaves a large image exactly as it was (no resampling loss).
    assert torch.equal(at_work_size(lambda x, m: x, image, None, 40), image)


def test_bad_work_sizes_are_clear_errors() -> None:
    assert check_plan(InferencePlan(work_size=None), "k").work_size is None
    assert check_plan(InferencePlan(work_size=256), "k").work_size == 256
    for bad in (16, 0, 2.5, True, "256"):
        with pytest.raises(ConfigError, match=r"k.work_size = .* is not a working size; valid: an integer >= 32"):
            check_plan(InferencePlan(work_size=bad), "k")
    own = InferencePlan(work_size=128)
    assert overridden(own, {"work_size": None}, "k").work_size == 128  # None keeps the model's own
    assert overridden(own, {"work_size": 0}, "k").work_size is None  # 0 = native resolution
    assert overridden(own, {"work_size": 64}, "k").work_size == 64
    with pytest.raises(ConfigError, match="retouch.work_size = 8"):
        overridden(own, {"work_size": 8}, "retouch")


def test_auto_is_the_scale_of_the_training_images() -> None:
    def resolved(**data) -> int | None:
        generator = data.pop("generator", {})
        return training_plan(resolve("train", overrides={"data": data, "model": {"generator": generator}})[0]).work_size

    assert resolved() == 256  # synthetic data: data.synthetic.size
    assert resolved(synthetic={"size": 128}) == 128
    assert resolved(source="folder", root="pairs") is None  # folders: their own pixel scale
    assert resolved(source="folder", root="pairs", resize=512) == 512
    assert resolved(source="folder", root="pairs", max_side=640) == 640
    assert resolved(generator={"work_size": 384}) == 384 and resolved(generator={"work_size": None}) is None
    with pytest.raises(ConfigError, match=r"inference.work_size \(from --set\) = 'big' is not valid; valid: auto"):
        resolved(generator={"work_size": "big"})


def test_training_saves_the_plan_and_loading_restores_it(tmp_path: Path) -> None:
    trainer = build_training(tiny_options(tmp_path, "train.steps=1"))
    trainer.fit()
    state = load_checkpoint(trainer.run_dir / "latest.pt")
    assert state["inference"]["work_size"] == 32  # data.synthetic.size of the tiny options
    assert state["inference"]["coarse_pass"] is True  # the quickstart recipe the tiny options build on
    assert state["inference"]["edit_floor"] == 0.25  # its model.generator.args.edit_floor
    assert "work_size" not in state["generator"] and "coarse_pass" not in state["generator"]
    _, info = load_generator(trainer.run_dir / "best.pt")
    assert info["plan"] == InferencePlan(work_size=32, coarse_pass=True, edit_floor=0.25)


def test_checkpoints_saved_before_the_plan_block_give_the_same_plan(tmp_path: Path) -> None:
    net = GENERATORS.build("autoretouch", ngf=4, n_blocks=1, edit_mask=True, edit_floor=0.3)
    entry = {"name": "autoretouch", "args": {"ngf": 4, "n_blocks": 1, "edit_mask": True, "edit_floor": 0.3},
             "work_size": 64, "coarse_pass": True, "state_dict": net.state_dict()}  # the layout before the block
    old = save_checkpoint({"kind": "train", "options": {}, "generator": entry}, tmp_path / "old.pt")
    assert load_generator(old)[1]["plan"] == InferencePlan(work_size=64, coarse_pass=True, edit_floor=0.3)
    entry["work_size"] = 8
    bad = save_checkpoint({"kind": "train", "options": {}, "generator": entry}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"bad.pt holds an invalid inference plan: inference.work_size = 8"):
        load_generator(bad)
    newer = save_checkpoint({"kind": "train", "options": {}, "generator": entry, "inference": {"gamma": 2}},
                            tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match=r"inference settings this gan-retouch does not know \(gamma\)"):
        load_generator(newer)


def make_checkpoint(path: Path, work_size: int | None) -> Path:
    """A tiny residual AutoRetouch that visibly edits, saved with a working size (None: saved without one), in
    the checkpoint layout from before the plan block."""
    args = {"ngf": 4, "n_blocks": 1, "residual": True}
    net = GENERATORS.build("autoretouch", **args)
    with torch.no_grad():
        net.tail.weight.normal_(0, 0.05)
    options = resolve("train", overrides={"name": "tiny", "data": {"synthetic": {"size": 48, "test_count": 2}}})[0]
    entry = {"name": "autoretouch", "args": args, "state_dict": net.state_dict()}
    if work_size is not None:
        entry["work_size"] = work_size
    return save_checkpoint({"kind": "train", "options": options, "generator": entry, "step": 1}, path)


def test_checkpoints_saved_without_a_work_size_run_natively(tmp_path: Path) -> None:
    assert load_generator(make_checkpoint(tmp_path / "old.pt", None))[1]["plan"].work_size is None


def test_retouch_runs_the_network_at_the_checkpoints_work_size(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    checkpoint = make_checkpoint(tmp_path / "ckpt" / "best.pt", 32)
    photos = tmp_path / "photos"
    photos.mkdir()
    image = (torch.linspace(0.2, 0.8, 64).view(1, 1, 64) + 0.1 * torch.rand(3, 48, 64)).clamp(0, 1)
    tensor_to_pil(image).save(photos / "a.png")
    image = read_image(photos / "a.png")
    base = ["retouch", str(photos), "--checkpoint", str(checkpoint), "--device", "cpu"]
    assert main([*base, "-o", str(tmp_path / "own")]) == 0
    assert "plan: work size 32 px" in printed(capsys)
    assert main([*base, "-o", str(tmp_path / "native"), "--work-size", "0"]) == 0
    generator, _ = load_generator(checkpoint)

    def network(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return run_generator(generator, x, mask)[0]

    expected = at_work_size(network, image[None], None, 32)[0]
    native = run_plan(InferencePlan(), generator, image[None])[0]
    assert (expected - native).abs().max() > 4 / 255  # the two ways really differ on this photo
    assert (read_image(tmp_path / "own" / "a.png") - expected).abs().max() <= 1 / 255 + 1e-6
    assert (read_image(tmp_path / "native" / "a.png") - native).abs().max() <= 1 / 255 + 1e-6
    assert main([*base, "-o", str(tmp_path / "bad"), "--work-size", "20"]) == 2
    assert "inference.work_size = 20 is not a working size" in printed(capsys)
    assert not (tmp_path / "bad").exists()


def test_test_scores_at_each_checkpoints_work_size_unless_told(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    checkpoint = make_checkpoint(tmp_path / "ws" / "best.pt", 32)
    base = ["test", "--checkpoint", str(checkpoint), "--device", "cpu", "--set", f"results_root={tmp_path / 'r'}",
            "test.lpips=false"]
    assert main(base) == 0 and main([*base, "--work-size", "0"]) == 0
    own = json.loads((tmp_path / "r" / "tiny" / "test_ws-best" / "metrics.json").read_text())["summary"]
    native = json.loads((tmp_path / "r" / "tiny" / "test_ws-best_2" / "metrics.json").read_text())["summary"]
    assert set(native) == {"identity (input)", "ws-best (work size native)"}
    assert own["ws-best"]["psnr"] != pytest.approx(native["ws-best (work size native)"]["psnr"], abs=1e-3)
    assert main([*base, "--work-size", "31", "--set", "name=bad"]) == 2
    assert "inference.work_size = 31 is not a working size" in printed(capsys)
    assert not (tmp_path / "r" / "bad").exists()


def test_validation_runs_at_the_work_size(tmp_path: Path) -> None:
    options = tiny_options(tmp_path, "data.synthetic.size=48", "inference.work_size=32",
                           "inference.coarse_pass=false")
    validator = Validator.from_options(options, torch.device("cpu"), DistInfo())
    assert validator.plan == training_plan(options) and validator.plan.work_size == 32
    generator = GENERATORS.build("autoretouch", ngf=4, n_blocks=1, residual=True).eval()
    with torch.no_grad():
        generator.tail.weight.normal_(0, 0.05)
    batch = {"input": torch.rand(2, 3, 48, 64)}
    scaled = validator._outputs(generator, batch)
    small = F.interpolate(batch["input"], size=(24, 32), mode="bilinear", antialias=True)
    edit = F.interpolate(run_generator(generator, small)[0] - small, size=(48, 64), mode="bilinear")
    assert torch.allclose(scaled, (batch["input"] + edit).clamp(0, 1), atol=1e-5)
    validator.plan = InferencePlan()
    assert not torch.allclose(scaled, validator._outputs(generator, batch), atol=1e-3)


def open_edit_mask_net() -> torch.nn.Module:
    """A tiny edit-mask AutoRetouch whose map is wide open (m near 1) and whose change is visible."""
    net = GENERATORS.build("autoretouch", ngf=4, n_blocks=1, edit_mask=True, edit_floor=0.25).eval()
    with torch.no_grad():
        net.tail.weight.normal_(0, 0.05)
        net.tail.bias[3] = 10.0
    return net


def test_the_coarse_pass_applies_a_half_size_edit_first_then_the_full_size_network() -> None:
    seen = []

    def coarse(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        seen.append(("coarse", tuple(x.shape[-2:])))
        return x + 0.1

    def fine(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        seen.append(("fine", tuple(x.shape[-2:])))
        return x

    image = torch.rand(1, 3, 40, 60) * 0.5
    assert torch.allclose(coarse_to_fine(fine, coarse, image, None), image + 0.1, atol=1e-6)
    assert seen == [("coarse", (20, 30)), ("fine", (40, 60))]
    seen.clear()
    at_work_size(fine, torch.rand(1, 3, 80, 120), None, 60, coarse)  # the coarse pass halves the working size
    assert seen == [("coarse", (20, 30)), ("fine", (40, 60))]


def test_the_coarse_pass_runs_with_a_raised_floor_and_leaves_the_network_as_it_was() -> None:
    net = open_edit_mask_net()
    image = torch.rand(1, 3, 48, 64)
    out = run_plan(InferencePlan(coarse_pass=True, edit_floor=0.25), net, image)
    assert net.edit_floor == 0.25  # nothing was changed on the network: the floor is an argument of each call
    small = F.interpolate(image, size=(24, 32), mode="bilinear", antialias=True)
    edit = F.interpolate(run_generator(net, small, floor=COARSE_FLOOR)[0] - small, size=(48, 64), mode="bilinear")
    expected = run_generator(net, (image + edit).clamp(0, 1), floor=0.25)[0]
    assert torch.allclose(out, expected, atol=1e-5)
    assert not torch.allclose(out, run_plan(InferencePlan(edit_floor=0.25), net, image), atol=1e-3)


def test_coarse_pass_settings() -> None:
    masked, plain = ModelFacts(edit_map=True), ModelFacts(edit_map=False, source="plain.pt")
    assert not resolve_plan(InferencePlan(), {}, "k", masked).coarse_pass  # a model saved without it: off
    own = InferencePlan(coarse_pass=True)
    assert resolve_plan(own, {"coarse_pass": None}, "k", masked).coarse_pass
    assert not resolve_plan(own, {"coarse_pass": False}, "k", masked).coarse_pass
    assert resolve_plan(InferencePlan(), {"coarse_pass": True}, "k", masked).coarse_pass
    with pytest.raises(ConfigError, match="k.coarse_pass=true needs a model with an edit map; plain.pt was trained"):
        resolve_plan(InferencePlan(), {"coarse_pass": True}, "k", plain)
    with pytest.raises(ConfigError, match="k.coarse_pass must be true or false; got 'yes'"):
        resolve_plan(own, {"coarse_pass": "yes"}, "k", masked)
    assert resolve_plan(own, {"backend": "auto"}, "k", masked).backend == "torch"  # only PyTorch can run it
    with pytest.raises(ConfigError, match="an ONNX export has its floor built in"):
        resolve_plan(own, {"backend": "onnxruntime"}, "k", masked)

    def resolved(**generator) -> bool:
        return training_plan(resolve("train", "quickstart", {"model": {"generator": generator}})[0]).coarse_pass

    assert resolved() is True and resolved(coarse_pass=False) is False  # the quickstart recipe turns it on
    with pytest.raises(ConfigError, match="coarse_pass=true needs an edit map"):
        resolved(args={"edit_mask": False, "edit_floor": 0.0})
    with pytest.raises(ConfigError, match="inference.coarse_pass .*must be of type bool"):
        resolved(coarse_pass="on")


def test_test_and_retouch_run_the_checkpoints_coarse_pass_unless_told(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    net = open_edit_mask_net()
    options = resolve("train", overrides={"name": "tiny", "data": {"synthetic": {"size": 48, "test_count": 2}}})[0]
    entry = {"name": "autoretouch", "args": {"ngf": 4, "n_blocks": 1, "edit_mask": True, "edit_floor": 0.25},
             "coarse_pass": True, "state_dict": net.state_dict()}
    checkpoint = save_checkpoint({"kind": "train", "options": options, "generator": entry}, tmp_path / "m" / "best.pt")
    base = ["test", "--checkpoint", str(checkpoint), "--device", "cpu", "--set", f"results_root={tmp_path / 'r'}",
            "test.lpips=false"]
    assert main(base) == 0 and main([*base, "--set", "inference.coarse_pass=false"]) == 0
    own = json.loads((tmp_path / "r" / "tiny" / "test_m-best" / "metrics.json").read_text())["summary"]
    off = json.loads((tmp_path / "r" / "tiny" / "test_m-best_2" / "metrics.json").read_text())["summary"]
    assert "m-best (coarse pass off)" in off
    assert own["m-best"]["psnr"] != pytest.approx(off["m-best (coarse pass off)"]["psnr"], abs=1e-3)
    photos = tmp_path / "photos"
    photos.mkdir()
    tensor_to_pil(torch.rand(3, 40, 40)).save(photos / "a.png")
    retouch = ["retouch", str(photos), "--checkpoint", str(checkpoint), "--device", "cpu"]
    assert main([*retouch, "-o", str(tmp_path / "out")]) == 0
    assert "coarse pass on" in printed(capsys)
    assert main([*retouch, "-o", str(tmp_path / "bad"), "--set", "inference.coarse_pass=true",
                 "inference.backend=onnxruntime"]) == 2
    assert "an ONNX export has its floor built in" in printed(capsys)
    assert not (tmp_path / "bad").exists()
