"""`gan-retouch synth` writes a loadable dataset, and adds defects to clean photos on the skin of their faces."""

from pathlib import Path

import pytest
import torch
from PIL import Image

from gan_retouch.cli import main
from gan_retouch.data import build_dataset, read_image, read_mask
from gan_retouch.errors import DataError
from gan_retouch.imaging import save_image
from gan_retouch.synth import blemish_photo, detect_skin, synthesize_pair
from gan_retouch.synth.faces import face_region, find_faces


def _printed(capsys) -> str:
    captured = capsys.readouterr()
    return " ".join((captured.out + captured.err).split())  # the console wraps long lines


def test_synth_writes_splits_loadable_as_folders(tmp_path: Path) -> None:
    assert main(["synth", "--out", str(tmp_path), "--count", "2", "--size", "64", "--set", "synth.splits=[val]"]) == 0
    for sub in ("source", "target", "mask", "skin"):
        assert len(list((tmp_path / "val" / sub).glob("*.png"))) == 2
    data = {"source": "folder", "root": str(tmp_path), "input_dir": "auto", "target_dir": "auto",
            "mask_dir": "auto", "skip_bad_pairs": False, "val_count": None}
    item = build_dataset(data, "val")[1]
    assert item["name"] == "synthetic_val_000001" and item["mask"].shape == (1, 64, 64)


def test_synth_family_settings_reach_the_pairs_and_bad_ones_are_errors(tmp_path: Path, capsys) -> None:
    args = ["synth", "--out", str(tmp_path), "--count", "1", "--size", "48", "--set", "synth.splits=[test]"]
    assert main([*args, "synth.family.defects=[]", "synth.family.clean_fraction=0.0"]) == 0
    assert torch.equal(read_image(tmp_path / "test" / "source" / "synthetic_test_000000.png"),
                       read_image(tmp_path / "test" / "target" / "synthetic_test_000000.png"))
    assert main([*args, "synth.family.defects=[zits]"]) != 0
    assert "synth.family.defects (from --set) = 'zits' is not valid" in _printed(capsys)


def _face_photo(folder: Path) -> Path:
    """A generated portrait on a skin-coloured background that OpenCV's frontal-face cascade detects."""
    pair = synthesize_pair(1, 192, split="test", camera=False, glasses=0.0, backgrounds=["skin"],
                           clean_fraction=1.0, face_scale=[0.8, 1.0])
    path = folder / "me.png"
    save_image(pair["target"], path)
    return path


def test_clean_photos_get_defects_on_face_skin_only(tmp_path: Path) -> None:
    photo = _face_photo(tmp_path / "clean")
    image = read_image(photo)
    faces = find_faces(image)
    out = tmp_path / "out"
    assert main(["synth", "--clean", str(tmp_path / "clean"), "--out", str(out), "--set", "synth.tone_down_spots=false",
                 "synth.family.defect_count=[12,12]", "synth.family.defects=[dark_spot,acne]"]) == 0
    source, target, mask = read_image(out / "source" / "me.png"), read_image(out / "target" / "me.png"), read_mask(out / "mask" / "me.png")
    assert torch.equal(target, image) and not torch.equal(source, target)
    assert float(mask.sum()) > 0
    background = detect_skin(image)[0] > 0.5  # the colour rule alone would accept the skin-coloured wall
    background &= face_region(faces, *image.shape[-2:])[0] == 0
    assert float(background.float().mean()) > 0.2
    assert float(mask[0][background].sum()) == 0.0


def test_a_photo_without_a_face_is_a_clear_error_and_nothing_is_written(tmp_path: Path, capsys) -> None:
    _face_photo(tmp_path / "clean")
    Image.new("RGB", (96, 96), (224, 172, 140)).save(tmp_path / "clean" / "wall.png")  # skin-coloured, no face
    out = tmp_path / "out"
    assert main(["synth", "--clean", str(tmp_path / "clean"), "--out", str(out)]) != 0
    error = _printed(capsys)
    assert "no face found in 1 photo(s)" in error and "wall.png" in error and "crop or rotate" in error
    assert not (out / "source").exists()


def test_blemish_photo_is_deterministic_and_names_a_faceless_photo(tmp_path: Path) -> None:
    photo = read_image(_face_photo(tmp_path))
    first = blemish_photo(photo, {"defect_count": [8, 8]}, ("bench", 0), tone_down=False)
    again = blemish_photo(photo, {"defect_count": [8, 8]}, ("bench", 0), tone_down=False)
    assert torch.equal(first["input"], again["input"]) and torch.equal(first["target"], photo)
    assert torch.equal(first["mask"] > 0, (first["input"] - photo).abs().amax(0, keepdim=True) > 0)
    assert float((first["mask"] * (first["skin"] == 0)).sum()) == 0.0
    with pytest.raises(DataError, match="no face found in wall.png"):
        blemish_photo(torch.full((3, 64, 64), 0.7), {}, ("bench", 1), name="wall.png")


def test_skin_detector_finds_skin_tones() -> None:
    image = torch.zeros(3, 32, 32)
    image[:, :, :16] = torch.tensor([224, 172, 140])[:, None, None] / 255
    image[:, :, 16:] = torch.tensor([40, 90, 200])[:, None, None] / 255
    skin = detect_skin(image)
    assert float(skin[0, :, :12].min()) > 0.9 and float(skin[0, :, 20:].max()) < 0.1


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
