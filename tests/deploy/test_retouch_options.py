"""`gan-retouch retouch`: alpha kept, --strength, in-place refusal, automatic tiling and the backend line."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gan_retouch.nets  # noqa: F401  (registers the generators)
from gan_retouch.cli import main
from gan_retouch.config import resolve
from gan_retouch.data import read_image
from gan_retouch.deploy.image_files import encode_png
from gan_retouch.engine.checkpoint import load_generator, save_checkpoint
from gan_retouch.imaging import tensor_to_pil
from gan_retouch.inference.plan import InferencePlan
from gan_retouch.inference.run import run_plan
from gan_retouch.registry import GENERATORS

ARGS = {"width": 4, "blocks": 1, "context": 1}


def printed(capsys: pytest.CaptureFixture) -> str:
    return " ".join(capsys.readouterr().out.split())


def save_student(path: Path, args: dict) -> Path:
    """A tiny fast student that visibly changes images (a fresh one is the identity), saved as a checkpoint."""
    net = GENERATORS.build("student_fast", **args)
    torch.nn.init.normal_(net.head.weight, std=0.3, generator=torch.Generator().manual_seed(0))
    entry = {"name": "student_fast", "args": args, "state_dict": net.state_dict()}
    return save_checkpoint({"kind": "train", "options": resolve("train")[0], "generator": entry, "step": 0}, path)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_student(tmp_path_factory.mktemp("ckpt") / "best.pt", ARGS)


def photo(height: int, width: int, seed: int = 0) -> torch.Tensor:
    noise = torch.rand(3, height, width, generator=torch.Generator().manual_seed(seed))
    return (torch.linspace(0.2, 0.8, width).view(1, 1, width) + 0.2 * noise).clamp(0, 1)


def retouch(source: Path, out: Path, checkpoint: Path, *settings: str) -> int:
    return main(["retouch", str(source), "-o", str(out), "--checkpoint", str(checkpoint), "--device", "cpu",
                 "--set", "inference.backend=torch", *settings])


def test_alpha_channel_is_kept(checkpoint: Path, tmp_path: Path) -> None:
    alpha = np.tile(np.linspace(0, 255, 40, dtype=np.uint8), (24, 1))
    picture = tensor_to_pil(photo(24, 40))
    picture.putalpha(Image.fromarray(alpha))
    picture.save(tmp_path / "logo.png")
    picture.save(tmp_path / "logo.webp", lossless=True)
    assert retouch(tmp_path / "logo.png", tmp_path / "out", checkpoint) == 0
    assert retouch(tmp_path / "logo.webp", tmp_path / "out", checkpoint, "retouch.quality=100") == 0
    for name in ("logo.png", "logo.webp"):
        with Image.open(tmp_path / "out" / name) as written:
            assert written.mode == "RGBA"
            assert np.abs(np.asarray(written.getchannel("A"), dtype=int) - alpha).max() <= 1


def test_strength_blends_between_input_and_edit(checkpoint: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    image = photo(32, 48)
    tensor_to_pil(image).save(tmp_path / "face.png")
    source = read_image(tmp_path / "face.png")
    full = run_plan(InferencePlan(), load_generator(checkpoint)[0], source[None])[0]
    assert (full - source).abs().max() > 0.05  # the model does edit, so the checks below can fail
    for strength, expected in ((0.0, source), (0.5, source + 0.5 * (full - source)), (1.0, full)):
        out = tmp_path / f"s{strength}"
        assert retouch(tmp_path / "face.png", out, checkpoint, f"inference.strength={strength}") == 0
        assert (read_image(out / "face.png") - expected).abs().max() <= 1.5 / 255
    flag = main(["retouch", str(tmp_path / "face.png"), "-o", str(tmp_path / "flag"), "--checkpoint",
                 str(checkpoint), "--device", "cpu", "--strength", "0.5", "--set", "inference.backend=torch"])
    assert flag == 0 and (read_image(tmp_path / "flag" / "face.png") - read_image(tmp_path / "s0.5" / "face.png")).abs().max() == 0
    for bad in ("1.5", "-0.1"):
        assert retouch(tmp_path / "face.png", tmp_path / "bad", checkpoint, f"inference.strength={bad}") == 2
        assert "inference.strength" in (report := printed(capsys)) and "[0, 1]" in report
        assert main(["retouch", str(tmp_path / "face.png"), "-o", str(tmp_path / "bad"), "--checkpoint",
                     str(checkpoint), "--strength", bad]) == 2
        assert "inference.strength" in printed(capsys)
    assert not (tmp_path / "bad").exists()


def test_output_folder_equal_to_input_folder_is_an_error(checkpoint: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    tensor_to_pil(photo(16, 16)).save(folder / "a.png")
    before = (folder / "a.png").read_bytes()
    assert retouch(folder, folder, checkpoint) == 2
    report = printed(capsys)
    assert "is where the inputs are" in report and "--overwrite" in report
    assert (folder / "a.png").read_bytes() == before and sorted(p.name for p in folder.iterdir()) == ["a.png"]
    assert retouch(folder, folder, checkpoint, "retouch.suffix=_r") == 0
    assert (folder / "a_r.png").is_file()


def test_large_image_is_tiled_only_when_it_does_not_fit(checkpoint: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    tensor_to_pil(photo(300, 560, seed=1)).save(tmp_path / "big.png")
    assert retouch(tmp_path / "big.png", tmp_path / "whole", checkpoint) == 0
    report = printed(capsys)
    assert "backend: torch" in report and "tiles of" not in report
    assert retouch(tmp_path / "big.png", tmp_path / "tiled", checkpoint, "inference.memory_mb=1",
                   "inference.tile_overlap=192") == 0
    assert "tiles of" in printed(capsys)
    whole, tiled = read_image(tmp_path / "whole" / "big.png"), read_image(tmp_path / "tiled" / "big.png")
    assert (whole - tiled).abs().max() <= 1 / 255 + 1e-6


def test_edit_floor_overrides_the_checkpoints_for_one_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    masked = save_student(tmp_path / "masked.pt", {**ARGS, "edit_mask": True})
    tensor_to_pil(photo(32, 48)).save(tmp_path / "face.png")
    source = read_image(tmp_path / "face.png")
    model = load_generator(masked)[0].eval()
    with torch.no_grad():
        opened = torch.sigmoid(model(source[None])[1])
    floor = float(opened.median())  # zeroes about half of the map
    expected = run_plan(InferencePlan(edit_floor=floor), model, source[None])[0]
    assert retouch(tmp_path / "face.png", tmp_path / "plain", masked) == 0
    assert retouch(tmp_path / "face.png", tmp_path / "floored", masked, f"inference.edit_floor={floor}") == 0
    plain, floored = read_image(tmp_path / "plain" / "face.png"), read_image(tmp_path / "floored" / "face.png")
    assert (floored - expected).abs().max() <= 1.5 / 255
    assert (floored - source).abs().sum() < 0.9 * (plain - source).abs().sum()  # the floor left more untouched
    flag = main(["retouch", str(tmp_path / "face.png"), "-o", str(tmp_path / "flag"), "--checkpoint", str(masked),
                 "--device", "cpu", "--edit-floor", str(floor)])
    assert flag == 0 and "torch" in printed(capsys)
    assert (read_image(tmp_path / "flag" / "face.png") - floored).abs().max() == 0
    for bad in ("1.0", "-0.2"):
        assert retouch(tmp_path / "face.png", tmp_path / "bad", masked, f"inference.edit_floor={bad}") == 2
        assert "inference.edit_floor" in (report := printed(capsys)) and "[0, 1)" in report
    assert main(["retouch", str(tmp_path / "face.png"), "-o", str(tmp_path / "bad"), "--checkpoint", str(masked),
                 "--device", "cpu", "--edit-floor", "0.5", "--set", "inference.backend=onnxruntime"]) == 2
    assert "ONNX export has its floor built in" in printed(capsys)
    assert not (tmp_path / "bad").exists()


def test_edit_floor_needs_an_edit_map(checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tensor_to_pil(photo(16, 16)).save(tmp_path / "face.png")
    assert retouch(tmp_path / "face.png", tmp_path / "out", checkpoint, "inference.edit_floor=0.3") == 2
    assert "needs a model with an edit map" in printed(capsys)
    assert not (tmp_path / "out" / "face.png").exists()


def test_png_compression_changes_the_file_size_not_the_pixels(checkpoint: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    tensor_to_pil(photo(64, 96)).save(tmp_path / "face.png")
    (tmp_path / "deep.png").write_bytes(encode_png(photo(40, 52), None, None, bits=16))
    sizes = {}
    for level in (0, 9):
        out = tmp_path / f"level{level}"
        for name in ("face.png", "deep.png"):
            assert retouch(tmp_path / name, out, checkpoint, f"retouch.png_compression={level}") == 0
        sizes[level] = {name: (out / name).stat().st_size for name in ("face.png", "deep.png")}
        for name in ("face.png", "deep.png"):
            assert torch.equal(read_image(out / name), read_image(tmp_path / "level0" / name))  # lossless
    assert all(sizes[9][name] < sizes[0][name] for name in ("face.png", "deep.png")), sizes
    assert retouch(tmp_path / "face.png", tmp_path / "bad", checkpoint, "retouch.png_compression=10") == 2
    assert "retouch.png_compression" in printed(capsys)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_a_large_png_deflated_in_pieces_decodes_to_the_same_pixels(workers: int,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Above 1 MB of rows the PNG is deflated on several threads; the pieces must form one valid stream."""
    import io
    import zlib

    from gan_retouch.deploy import image_files

    image = photo(600, 700)  # 1.26 MB of 8-bit rows
    data = np.random.default_rng(0).integers(0, 9, 3 << 20, dtype=np.uint8).tobytes()
    assert zlib.decompress(image_files.deflate(data, 1, workers)) == data
    original = image_files.deflate
    monkeypatch.setattr(image_files, "deflate", lambda payload, level: original(payload, level, workers))
    encoded = encode_png(image, None, None, compression=1)
    decoded = torch.from_numpy(np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB")).copy()).permute(2, 0, 1)
    assert torch.equal(decoded, (image * 255).round().to(torch.uint8))


def test_the_strength_saved_in_the_checkpoint_is_the_default(checkpoint: Path, tmp_path: Path) -> None:
    state = torch.load(checkpoint, weights_only=True)
    state["inference"] = {**InferencePlan().to_dict(), "strength": 0.5}  # as train.strength=auto saves it
    saved = save_checkpoint({k: v for k, v in state.items() if k != "format"}, tmp_path / "chosen.pt")
    tensor_to_pil(photo(32, 48)).save(tmp_path / "face.png")
    source = read_image(tmp_path / "face.png")
    full = run_plan(InferencePlan(), load_generator(checkpoint)[0], source[None])[0]
    assert retouch(tmp_path / "face.png", tmp_path / "default", saved) == 0
    assert (read_image(tmp_path / "default" / "face.png") - (source + 0.5 * (full - source))).abs().max() <= 1.5 / 255
    assert retouch(tmp_path / "face.png", tmp_path / "full", saved, "retouch.strength=1") == 0
    assert (read_image(tmp_path / "full" / "face.png") - full).abs().max() <= 1.5 / 255
