"""benchmarks/bench_faces.py and face_scores.py: the spot score and the change per face part mean what they say,
and the script retouches through the CLI, skips faceless photos by name and records its tables."""

import json
import os
import sys
from pathlib import Path

import pytest
import torch
from benchmark_scripts import benchmark_script
from engine_utils import tiny_options
from torchvision.transforms.functional import gaussian_blur

from gan_retouch.imaging import save_image
from gan_retouch.synth.family import SynthOptions
from gan_retouch.synth.portrait import render_portrait
from gan_retouch.synth.regions import face_parts
from gan_retouch.train import build_training as Trainer

FACE_WIDTH = 200.0
SPOTS = [(40, 50), (90, 120), (150, 60), (200, 200), (60, 190), (180, 140)]
PORTRAIT = SynthOptions.from_mapping({"camera": False, "glasses": 0.0, "backgrounds": ["skin"],
                                      "clean_fraction": 1.0, "face_scale": [0.8, 1.0]})


@pytest.fixture(scope="module")
def scores():
    with benchmark_script("face_scores") as module:
        yield module


@pytest.fixture(scope="module")
def portrait() -> torch.Tensor:
    return render_portrait((0, "test", 1), 192, PORTRAIT).image  # OpenCV's cascades find this face


@pytest.fixture(scope="module")
def bench():
    with benchmark_script("bench_faces") as module:
        yield module


def skin_with_spots() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(clean skin with fine texture, the same with six red spots, an all-skin mask), 256 x 256."""
    generator = torch.Generator().manual_seed(0)
    grain = 0.015 * torch.randn(1, 256, 256, generator=generator)
    clean = (torch.tensor([0.85, 0.62, 0.52])[:, None, None] + grain).clamp(0, 1)
    ys, xs = torch.meshgrid(torch.arange(256.0), torch.arange(256.0), indexing="ij")
    bump = sum(torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 2.0**2)) for x, y in SPOTS)
    spotted = (clean + bump[None] * torch.tensor([0.06, -0.08, -0.05])[:, None, None]).clamp(0, 1)
    return clean, spotted, torch.ones(1, 256, 256)


def test_the_identity_removes_nothing_and_keeps_all_texture(scores) -> None:
    _, spotted, skin = skin_with_spots()
    score = scores.spot_score(spotted, spotted.clone(), skin, FACE_WIDTH)
    assert score["spots"] == len(SPOTS) and score["removed"] == 0.0 and score["texture_kept"] == 1.0
    found = sorted(score["centres"])
    assert all(min(abs(x - sx) + abs(y - sy) for sx, sy in SPOTS) <= 2 for x, y in found)


def test_removing_the_spots_scores_high_and_keeps_the_texture(scores) -> None:
    clean, spotted, skin = skin_with_spots()
    score = scores.spot_score(spotted, clean, skin, FACE_WIDTH)
    assert score["removed"] > 0.9 and 0.95 < score["texture_kept"] < 1.05


def test_blurring_the_skin_removes_spots_but_not_texture_kept(scores) -> None:
    _, spotted, skin = skin_with_spots()
    score = scores.spot_score(spotted, gaussian_blur(spotted[None], [15, 15], [3.0, 3.0])[0], skin, FACE_WIDTH)
    assert score["removed"] > 0.4 and score["texture_kept"] < 0.3


def test_a_model_that_edits_the_eyes_shows_it_in_the_eye_change_only(bench, portrait) -> None:
    image = portrait
    parts = face_parts(image)
    assert parts is not None
    edited = image.clone()
    for x0, y0, x1, y1 in parts.eye_boxes:
        edited[:, int(y0) + 2:int(y1) - 2, int(x0) + 2:int(x1) - 2] *= 0.8
    row = bench.score_photo(image, edited, parts)
    assert row["eyes"] > 5.0 and row["mouth"] == 0.0 and row["outside"] == 0.0 and row["hair"] == 0.0
    assert bench.score_photo(image, image, parts)["eyes"] == 0.0


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    trainer = Trainer(tiny_options(tmp_path_factory.mktemp("tiny"), "train.steps=1", "name=tiny"))
    trainer.fit()
    return trainer.run_dir / "latest.pt"


def test_the_script_scores_the_identity_and_a_model_and_records(bench, tmp_path, monkeypatch, checkpoint,
                                                                portrait) -> None:
    faces, pair, crops = tmp_path / "faces", tmp_path / "pair", tmp_path / "crops"
    save_image(portrait, faces / "me.png")
    save_image(torch.full((3, 64, 80), 0.5), faces / "wall.png")  # no face: named, not scored
    save_image(portrait, pair / "source" / "me.png")
    save_image((portrait * 0.98).clamp(0, 1), pair / "target" / "me.png")
    monkeypatch.setattr(sys, "argv", ["bench_faces.py", "--identity", "--checkpoint", str(checkpoint), "--faces",
                                      str(faces), "--pair", str(pair), "--crops", str(crops), "--record",
                                      "--set", "device=cpu"])
    bench.main()
    recorded = json.loads((Path(os.environ["GAN_RETOUCH_RESULTS_DIR"]) / "bench_faces.json").read_text())
    summary = recorded["records"][0]["tables"][0]
    identity, model = summary["rows"]
    assert identity[0] == "identity" and identity[1] == "+0.00" and identity[2] == "0.00"
    assert identity[5:] == ["0.00"] * 5 and model[0] == "tiny-latest"
    per_photo = recorded["records"][0]["tables"][1]["rows"]
    assert [row[0] for row in per_photo] == ["me.png", "mean"]  # the wall has no face
    assert (crops / "parts_me.png").is_file() and (crops / "tiny-latest_me_eye.png").is_file()


def test_nothing_to_score_is_a_clear_exit(bench, monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["bench_faces.py"])
    with pytest.raises(SystemExit, match="nothing to score"):
        bench.main()
