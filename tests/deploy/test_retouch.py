"""`gan-retouch retouch` on a folder of mixed photos with one corrupt file."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

import gan_retouch.nets  # noqa: F401  (registers the generators)
from gan_retouch.cli import main
from gan_retouch.config import resolve
from gan_retouch.data import read_image, read_image_with_info
from gan_retouch.deploy.image_files import encode_png
from gan_retouch.engine.checkpoint import load_generator, save_checkpoint
from gan_retouch.imaging import tensor_to_pil
from gan_retouch.inference.plan import InferencePlan
from gan_retouch.inference.run import run_plan
from gan_retouch.registry import GENERATORS


def printed(capsys: pytest.CaptureFixture) -> str:
    """What the command printed, with rich's line wrapping undone."""
    return " ".join(capsys.readouterr().out.split())

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def make_checkpoint(path: Path) -> Path:
    args = {"ngf": 4, "n_blocks": 1}
    net = GENERATORS.build("autoretouch", **args)
    options = resolve("train")[0]
    entry = {"name": "autoretouch", "args": args, "state_dict": net.state_dict()}
    return save_checkpoint({"kind": "train", "options": options, "generator": entry, "step": 0}, path)


def photo(height: int, width: int) -> torch.Tensor:
    return (torch.linspace(0.2, 0.8, width).view(1, 1, width) + 0.1 * torch.rand(3, height, width)).clamp(0, 1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("retouch")
    photos = root / "photos"
    (photos / "sub").mkdir(parents=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown rotated by 90 degrees
    tensor_to_pil(photo(32, 48)).save(photos / "a.png", icc_profile=SRGB, exif=exif.tobytes())
    tensor_to_pil(photo(48, 32)).save(photos / "b.jpg", quality=95)
    (photos / "c16.png").write_bytes(encode_png(photo(36, 44), SRGB, None, bits=16))
    tensor_to_pil(photo(30, 30)).save(photos / "sub" / "d.webp", quality=90)
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    return photos, make_checkpoint(root / "ckpt" / "best.pt")


def run(photos: Path, out: Path, checkpoint: Path, *extra: str) -> int:
    return main(["retouch", str(photos), "-o", str(out), "--checkpoint", str(checkpoint), "--device", "cpu",
                 "--set", "retouch.batch_size=2", *extra])


def test_folder_with_a_corrupt_file(setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    photos, checkpoint = setup
    out = tmp_path / "out"
    assert run(photos, out, checkpoint) == 1  # one file failed: non-zero exit, the others are done
    report = printed(capsys)
    assert "broken.png" in report and "retouched 4 image(s)" in report
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "a.png", "b.jpg", "c16.png", "sub/d.webp"]

    generator, _ = load_generator(checkpoint)
    upright = read_image(photos / "a.png")
    assert upright.shape == (3, 48, 32)  # EXIF orientation honoured
    expected = run_plan(InferencePlan(), generator, upright[None])[0]
    with Image.open(out / "a.png") as written:
        assert written.size == (32, 48)
        assert written.info.get("icc_profile") == SRGB
        assert written.getexif().get(0x0112, 1) == 1  # pixels are upright, so the tag must not rotate again
    assert (read_image(out / "a.png") - expected).abs().max() <= 1 / 255 + 1e-6

    image16, info16 = read_image_with_info(out / "c16.png")
    assert info16["bits"] == 16 and info16["icc_profile"] == SRGB and image16.shape == (3, 36, 44)
    expected16 = run_plan(InferencePlan(), generator, read_image(photos / "c16.png")[None])[0]
    assert (image16 - expected16).abs().max() < 1e-4  # kept at 16-bit precision, not rounded to 8 bits


def test_never_overwrites_unless_asked(setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    photos, checkpoint = setup
    single = photos / "b.jpg"
    out = tmp_path / "out"
    assert main(["retouch", str(single), "-o", str(out), "--checkpoint", str(checkpoint), "--device", "cpu"]) == 0
    before = (out / "b.jpg").read_bytes()
    (out / "b.jpg").write_bytes(b"user's own file")
    assert main(["retouch", str(single), "-o", str(out), "--checkpoint", str(checkpoint), "--device", "cpu"]) == 0
    assert "exists; use --overwrite" in printed(capsys)
    assert (out / "b.jpg").read_bytes() == b"user's own file"
    assert main(["retouch", str(single), "-o", str(out), "--checkpoint", str(checkpoint), "--device", "cpu",
                 "--overwrite"]) == 0
    assert (out / "b.jpg").read_bytes() == before

    original = single.read_bytes()
    assert main(["retouch", str(single), "-o", str(photos), "--checkpoint", str(checkpoint), "--device", "cpu"]) == 2
    assert "is where the inputs are" in printed(capsys)
    assert single.read_bytes() == original


def test_format_suffix_and_errors(setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    photos, checkpoint = setup
    out = tmp_path / "png"
    assert main(["retouch", str(photos / "sub"), "-o", str(out), "--checkpoint", str(checkpoint), "--device", "cpu",
                 "--set", "retouch.format=png", "retouch.suffix=_retouched"]) == 0
    with Image.open(out / "d_retouched.png") as written:
        assert written.format == "PNG"
    assert main(["retouch", str(photos / "b.jpg"), "-o", str(out), "--checkpoint", str(checkpoint), "--device", "cpu",
                 "--set", "inference.precision=fp16"]) == 2
    assert "needs a CUDA device" in printed(capsys)
    assert main(["retouch", str(tmp_path / "missing"), "-o", str(out), "--checkpoint", str(checkpoint),
                 "--device", "cpu"]) == 1
    assert "no such file or folder" in printed(capsys)


def test_png_encoder_round_trips_exactly(tmp_path: Path) -> None:
    image, alpha = torch.rand(3, 5, 7), torch.rand(1, 5, 7)
    for bits, levels in ((8, 255.0), (16, 65535.0)):
        for with_alpha in (None, alpha):
            path = tmp_path / f"x{bits}{with_alpha is not None}.png"
            path.write_bytes(encode_png(image, SRGB, None, with_alpha, compression=1, bits=bits))
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*alpha channel dropped.*")  # the RGB is compared here
                decoded, info = read_image_with_info(path)
            assert info["bits"] == bits and info["icc_profile"] == SRGB
            assert torch.equal(decoded, (image * levels).round() / levels)  # lossless after the Sub filter
            with Image.open(path) as opened:
                assert opened.size == (7, 5) and ("A" in opened.getbands()) == (with_alpha is not None)
                if bits == 8 and with_alpha is not None:
                    stored = torch.from_numpy(np.array(opened.getchannel("A"))).float()
                    assert torch.equal(stored, (alpha[0] * 255.0).round())


def test_pixels_are_upright_whichever_decoder_reads_them(tmp_path: Path) -> None:
    """The metadata reset the orientation tag of the opened image before a Pillow decode turned it upright."""
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways
    picture = tensor_to_pil(photo(32, 48))
    picture.save(tmp_path / "rgb.png", exif=exif.tobytes())
    picture.quantize(64).save(tmp_path / "palette.png", exif=exif.tobytes())
    for name in ("rgb.png", "palette.png"):
        for via_pillow in (False, True):
            image, info = read_image_with_info(tmp_path / name, png_via_pillow=via_pillow)
            assert image.shape == (3, 48, 32), (name, via_pillow)
            reloaded = Image.Exif()
            reloaded.load(info["exif"])
            assert reloaded.get(0x0112) == 1  # the pixels are upright, so the tag must not rotate them again
    rgb, _ = read_image_with_info(tmp_path / "rgb.png", png_via_pillow=True)
    assert torch.equal(rgb, read_image_with_info(tmp_path / "rgb.png")[0])  # Pillow and torchvision agree
