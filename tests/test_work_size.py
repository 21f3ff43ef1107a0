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
from gan_retouch.engine.networks import resolve_coarse_pass, resolve_work_size
from gan_retouch.errors import ConfigError
from gan_retouch.evaluate.validation import Validator
from gan_retouch.imaging import tensor_to_pil
from gan_retouch.nets.base import run_generator
from gan_retouch.nets.tiling import infer
from gan_retouch.nets.work_size import (
    COARSE_FLOOR,
    at_work_size,
    check_work_size,
    coarse_to_fine,
    override_work_size,
    use_coarse_pass,
    work_shape,
)
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
    assert check_work_size(None, "k") is None and check_work_size(256, "k") == 256
    for bad in (16, 0, 2.5, True, "256"):
        with pytest.raises(ConfigError, match=r"k = .* is not a working size; valid: an integer >= 32"):
            check_work_size(bad, "k")
    generator = GENERATORS.build("autoretouch", ngf=4, n_blocks=1)
    generator.work_size = 128
    override_work_size(generator, None, "k")
    assert generator.work_size == 128  # None keeps the model's own
    override_work_size(generator, 0, "k")
    assert generator.work_size is None  # 0 = native resolution
    override_work_size(generator, 64, "k")
    assert generator.work_size == 64
    with pytest.raises(ConfigError, match="retouch.work_size = 8"):
        override_work_size(generator, 8, "retouch.work_size")


def test_auto_is_the_scale_of_the_training_images() -> None:
    def resolved(**data) -> int | None:
        generator = data.pop("generator", {})
        return resolve_work_size(resolve("train", overrides={"data": data, "model": {"generator": generator}})[0])

    assert resolved() == 256  # synthetic data: data.synthetic.size
    assert resolved(synthetic={"size": 128}) == 128
    assert resolved(source="folder", root="pairs") is None  # folders: their own pixel scale
    assert resolved(source="folder", root="pairs", resize=512) == 512
    assert resolved(source="folder", root="pairs", max_side=640) == 640
    assert resolved(generator={"work_size": 384}) == 384 and resolved(generator={"work_size": None}) is None
    with pytest.raises(ConfigError, match=r"model.generator.work_size = 'big' is not a working size"):
        resolved(generator={"work_size": "big"})


def test_training_saves_the_work_size_and_loading_restores_it(tmp_path: Path) -> None:
    trainer = build_training(tiny_options(tmp_path, "train.steps=1"))
    trainer.fit()
    state = load_checkpoint(trainer.run_dir / "latest.pt")
    assert state["generator"]["work_size"] == 32  # data.synthetic.size of the tiny options
    assert state["generator"]["coarse_pass"] is True  # the quickstart recipe the tiny options build on
    generator, info = load_generator(trainer.run_dir / "best.pt")
    assert generator.work_size == 32 and info["generator"]["work_size"] == 32 and generator.coarse_pass is True


def make_checkpoint(path: Path, work_size: int | None) -> Path:
    """A tiny residual AutoRetouch that visibly edits, saved with a working size (None: saved without one)."""
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
    generator, _ = load_generator(make_checkpoint(tmp_path / "old.pt", None))
    assert generator.work_size is None


def test_retouch_runs_the_network_at_the_checkpoints_work_size(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    checkpoint = make_checkpoint(tmp_path / "ckpt" / "best.pt", 32)
    photos = tmp_path / "photos"
    photos.mkdir()
    image = (torch.linspace(0.2, 0.8, 64).view(1, 1, 64) + 0.1 * torch.rand(3, 48, 64)).clamp(0, 1)
    tensor_to_pil(image).save(photos / "a.png")
    image = read_image(photos / "a.png")
    base = ["retouch", str(photos), "--checkpoint", str(checkpoint), "--device", "cpu"]
    assert main([*base, "-o", str(tmp_path / "own")]) == 0
    assert "work size: 32 px" in printed(capsys)
    assert main([*base, "-o", str(tmp_path / "native"), "--work-size", "0"]) == 0
    generator, _ = load_generator(checkpoint)

    def network(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return run_generator(generator, x, mask)[0]

    expected = at_work_size(network, image[None], None, 32)[0]
    native = infer(generator, image[None])[0]
    assert (expected - native).abs().max() > 4 / 255  # the two ways really differ on this photo
    assert (read_image(tmp_path / "own" / "a.png") - expected).abs().max() <= 1 / 255 + 1e-6
    assert (read_image(tmp_path / "native" / "a.png") - native).abs().max() <= 1 / 255 + 1e-6
    assert main([*base, "-o", str(tmp_path / "bad"), "--work-size", "20"]) == 2
    assert "retouch.work_size = 20 is not a working size" in printed(capsys)
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
    assert "test.work_size = 31 is not a working size" in printed(capsys)
    assert not (tmp_path / "r" / "bad").exists()


def test_validation_runs_at_the_work_size(tmp_path: Path) -> None:
    options = tiny_options(tmp_path, "data.synthetic.size=48")
    validator = Validator.from_options(options, torch.device("cpu"), DistInfo())
    generator = GENERATORS.build("autoretouch", ngf=4, n_blocks=1, residual=True).eval()
    with torch.no_grad():
        generator.tail.weight.normal_(0, 0.05)
    batch = {"input": torch.rand(2, 3, 48, 64)}
    native = validator._outputs(generator, batch)
    generator.work_size = 32
    small = F.interpolate(batch["input"], size=(24, 32), mode="bilinear", antialias=True)
    edit = F.interpolate(run_generator(generator, small)[0] - small, size=(48, 64), mode="bilinear")
    scaled = validator._outputs(generator, batch)
    assert torch.allclose(scaled, (batch["input"] + edit).clamp(0, 1), atol=1e-5)
    assert not torch.allclose(scaled, native, atol=1e-3)


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


def test_infer_runs_the_coarse_pass_with_a_raised_floor_and_restores_it() -> None:
    net = open_edit_mask_net()
    image = torch.rand(1, 3, 48, 64)
    out = infer(net, image, coarse=True)
    assert net.edit_floor == 0.25  # restored after the coarse pass
    small = F.interpolate(image, size=(24, 32), mode="bilinear", antialias=True)
    net.edit_floor = COARSE_FLOOR
    edit = F.interpolate(run_generator(net, small)[0] - small, size=(48, 64), mode="bilinear")
    net.edit_floor = 0.25
    expected = run_generator(net, (image + edit).clamp(0, 1))[0]
    assert torch.allclose(out, expected, atol=1e-5)
    assert not torch.allclose(out, infer(net, image), atol=1e-3)


def test_coarse_pass_settings() -> None:
    masked, plain = open_edit_mask_net(), GENERATORS.build("autoretouch", ngf=4, n_blocks=1)
    assert not use_coarse_pass(None, masked, "k")  # a model saved without the setting: off
    masked.coarse_pass = True
    assert use_coarse_pass(None, masked, "k") and not use_coarse_pass(False, masked, "k")
    assert not use_coarse_pass(None, plain, "k") and use_coarse_pass(True, open_edit_mask_net(), "k")
    with pytest.raises(ConfigError, match="k=true needs a model with an edit map"):
        use_coarse_pass(True, plain, "k")
    with pytest.raises(ConfigError, match="k must be true or false; got 'yes'"):
        use_coarse_pass("yes", masked, "k")
    with pytest.raises(ConfigError, match="the coarse pass needs a model with an edit map"):
        infer(plain, torch.rand(1, 3, 16, 16), coarse=True)

    def resolved(**generator) -> bool:
        return resolve_coarse_pass(resolve("train", "quickstart", {"model": {"generator": generator}})[0])

    assert resolved() is True and resolved(coarse_pass=False) is False  # the quickstart recipe turns it on
    with pytest.raises(ConfigError, match="coarse_pass=true needs an edit map"):
        resolved(args={"edit_mask": False, "edit_floor": 0.0})
    with pytest.raises(ConfigError, match="model.generator.coarse_pass .*must be of type bool"):
        resolved(coarse_pass="on")


def test_test_and_retouch_run_the_checkpoints_coarse_pass_unless_told(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    net = open_edit_mask_net()
    options = resolve("train", overrides={"name": "tiny", "data": {"synthetic": {"size": 48, "test_count": 2}}})[0]
    entry = {"name": "autoretouch", "args": {"ngf": 4, "n_blocks": 1, "edit_mask": True, "edit_floor": 0.25},
             "coarse_pass": True, "state_dict": net.state_dict()}
    checkpoint = save_checkpoint({"kind": "train", "options": options, "generator": entry}, tmp_path / "m" / "best.pt")
    base = ["test", "--checkpoint", str(checkpoint), "--device", "cpu", "--set", f"results_root={tmp_path / 'r'}",
            "test.lpips=false"]
    assert main(base) == 0 and main([*base, "--set", "test.coarse_pass=false"]) == 0
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
    assert main([*retouch, "-o", str(tmp_path / "bad"), "--set", "retouch.coarse_pass=true",
                 "retouch.backend=onnxruntime"]) == 2
    assert "an ONNX export has its floor built in" in printed(capsys)
    assert not (tmp_path / "bad").exists()
