"""`gan-retouch synth` writes a loadable dataset, and adds defects to clean photos on detected skin."""

from pathlib import Path

import torch
from PIL import Image

from gan_retouch.cli import main
from gan_retouch.data import build_dataset, detect_skin, read_image, read_mask


def test_synth_writes_splits_loadable_as_folders(tmp_path: Path) -> None:
    assert main(["synth", "--out", str(tmp_path), "--count", "2", "--size", "64", "--set", "synth.splits=[val]"]) == 0
    for sub in ("source", "target", "mask", "skin"):
        assert len(list((tmp_path / "val" / sub).glob("*.png"))) == 2
    data = {"source": "folder", "root": str(tmp_path), "input_dir": "auto", "target_dir": "auto",
            "mask_dir": "mask", "skip_bad_pairs": False, "val_count": None}
    item = build_dataset(data, "val")[1]
    assert item["name"] == "synthetic_val_000001" and item["mask"].shape == (1, 64, 64)


def test_clean_photos_get_defects_on_skin_only(tmp_path: Path) -> None:
    photo = Image.new("RGB", (64, 64), (40, 90, 200))  # blue background: not skin
    photo.paste((224, 172, 140), (16, 16, 48, 48))  # a skin-coloured square
    (tmp_path / "clean").mkdir()
    photo.save(tmp_path / "clean" / "me.png")
    out = tmp_path / "out"
    assert main(["synth", "--clean", str(tmp_path / "clean"), "--out", str(out), "--set", "synth.defects.acne=[6,6]"]) == 0
    source, target = read_image(out / "source" / "me.png"), read_image(out / "target" / "me.png")
    mask = read_mask(out / "mask" / "me.png")
    assert torch.equal(target, read_image(tmp_path / "clean" / "me.png"))
    assert float(mask.sum()) > 0 and float(mask[:, :12].sum()) == 0.0  # no defects on the background
    assert not torch.equal(source, target)


def test_skin_detector_finds_skin_tones() -> None:
    image = torch.zeros(3, 32, 32)
    image[:, :, :16] = torch.tensor([224, 172, 140])[:, None, None] / 255
    image[:, :, 16:] = torch.tensor([40, 90, 200])[:, None, None] / 255
    skin = detect_skin(image)
    assert float(skin[0, :, :12].min()) > 0.9 and float(skin[0, :, 20:].max()) < 0.1
