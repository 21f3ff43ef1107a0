"""data.synthetic.photos: training faces cut from real photos at a drawn face width, with blemishes on their skin."""

from pathlib import Path

import pytest
import torch
from engine_utils import tiny_options
from PIL import Image

from gan_retouch.data import build_dataset
from gan_retouch.data.photo_faces import PhotoFaces
from gan_retouch.errors import ConfigError, DataError
from gan_retouch.imaging import save_image
from gan_retouch.synth import synthesize_pair
from gan_retouch.synth.family import SynthOptions


def _photos(folder: Path, faceless: bool = False) -> Path:
    """Two generated portraits on skin-coloured walls (OpenCV's cascade finds their faces), maybe a bare wall."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in (1, 5):
        pair = synthesize_pair(index, 256, split="test", camera=False, glasses=0.0, backgrounds=["skin"],
                               clean_fraction=1.0, face_scale=[0.8, 1.0])
        save_image(pair["target"], folder / f"face{index}.png")
    if faceless:
        Image.new("RGB", (96, 96), (224, 172, 140)).save(folder / "wall.png")
    return folder


def test_photo_faces_scale_each_face_into_the_drawn_width_and_draw_defects_on_skin(tmp_path: Path) -> None:
    faces = PhotoFaces(_photos(tmp_path / "photos"), size=64, face_width=(40.0, 48.0))
    assert len(faces.photos) == 2 and all(p.face.w <= 48.0 + 1e-3 for p in faces.photos)
    options = SynthOptions.from_mapping({"defects": ["acne", "dark_spot"], "defect_count": [10, 10]})
    item = faces.pair(3, seed=0, options=options)
    again = faces.pair(3, seed=0, options=options)
    assert item["input"].shape == (3, 64, 64) and item["name"].startswith("photo_face")
    assert torch.equal(item["input"], again["input"])
    changed = (item["input"] - item["target"]).abs().amax(0) > 0
    assert changed.any() and torch.equal(changed, item["mask"][0] > 0)
    assert not (changed & (item["skin"][0] == 0)).any()  # defects only on face skin


def test_a_photo_without_a_face_is_named_and_left_out(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match=r"no face found in 1 of 3 photos .*wall\.png"):
        faces = PhotoFaces(_photos(tmp_path / "photos", faceless=True), size=64, face_width=(40.0, 48.0))
    assert sorted(p.name for p in faces.photos) == ["face1.png", "face5.png"]


def test_bad_photo_folders_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a folder"):
        PhotoFaces(tmp_path / "missing", 64, (40.0, 48.0))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        PhotoFaces(tmp_path / "empty", 64, (40.0, 48.0))
    Image.new("RGB", (96, 96), (224, 172, 140)).save(tmp_path / "empty" / "wall.png")
    with pytest.raises(DataError, match="no face found in any photo"):
        with pytest.warns(UserWarning):
            PhotoFaces(tmp_path / "empty", 64, (40.0, 48.0))


def test_the_training_stream_mixes_photo_faces_with_portraits_and_validation_stays_procedural(tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos")
    options = tiny_options(tmp_path, "data.synthetic.size=64", f"data.synthetic.photos={photos}",
                           "data.synthetic.photo_share=0.5", "data.synthetic.photo_face_width=[40,48]")
    train = build_dataset(options["data"], "train")
    names = [train[i]["name"] for i in range(12)]
    assert any(n.startswith("photo_") for n in names) and any(n.startswith("synthetic_") for n in names)
    val = build_dataset(options["data"], "val")
    assert all(val[i]["name"].startswith("synthetic_val") for i in range(len(val)))
