"""`python -m gan_retouch.builtin.make`: weights-only files, manifests, the fp16 check, the budget, its refusals."""

import configparser
import fnmatch
import json
from pathlib import Path

import pytest
import torch

from gan_retouch.builtin import make, store
from gan_retouch.builtin.score import TOLERANCE_DB, check_pairs, pairs_digest, score
from gan_retouch.engine.checkpoint import load_generator
from gan_retouch.errors import CheckpointError, ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_the_files_are_weights_only_and_the_manifest_describes_them(fake_set):
    folder, manifests, sources = fake_set
    assert sorted(path.name for path in folder.iterdir()) == ["student.json", "student.pt", "teacher.json",
                                                              "teacher.pt"]
    for role, manifest in manifests.items():
        weights = torch.load(folder / f"{role}.pt", weights_only=True)
        assert isinstance(weights, dict) and all(isinstance(v, torch.Tensor) for v in weights.values())
        assert {v.dtype for v in weights.values() if v.is_floating_point()} == {torch.float16}
        assert not any(key.startswith(("optim", "disc")) for key in weights)
        on_disk = json.loads((folder / f"{role}.json").read_text())
        assert on_disk == manifest
        assert manifest["weights"]["sha256"] == store.sha256_of(folder / f"{role}.pt")
        assert manifest["weights"]["bytes"] == (folder / f"{role}.pt").stat().st_size
        assert manifest["kind"] == store.KINDS[role] and manifest["role"] == role
        assert set(make.RECORD_FIELDS) <= set(manifest["record"])
        assert "non-commercial" in manifest["licence"]["use"] and "FFHQ" in manifest["licence"]["why"]
        assert 0 < manifest["weights"]["max_output_change"] <= 0.05
        assert manifest["source"]["checkpoint"] == f"{role}_run/best.pt"  # no folder of this machine
    assert manifests["teacher"]["generator"] == {"name": "autoretouch", "args": {"ngf": 8, "n_blocks": 1,
                                                                                "edit_mask": True}}
    assert manifests["teacher"]["inference"]["coarse_pass"] is True
    assert manifests["student"]["source"]["distilled_from"] == "teacher_run/best.pt"


def test_the_teacher_is_its_ema_weights(fake_set):
    folder, manifests, sources = fake_set
    assert manifests["teacher"]["source"]["ema_weights"] is True
    stored = torch.load(folder / "teacher.pt", weights_only=True)
    for key, value in sources["ema"].state_dict().items():
        assert torch.equal(stored[key], value.half() if value.is_floating_point() else value)


def test_the_recorded_score_is_what_the_loaded_files_give(builtin_dir, fake_set):
    pairs = check_pairs()
    for role, manifest in fake_set[1].items():
        generator, info = load_generator(f"builtin:{role}")
        result = score(generator, info["plan"], pairs)
        assert result["pairs_sha256"] == manifest["score"]["pairs_sha256"] == pairs_digest(pairs)
        assert abs(result["psnr"] - manifest["score"]["psnr"]) <= TOLERANCE_DB
        assert result["gain_db"] != 0.0  # the fake models edit: the score measures them, not the identity


def test_refusals_write_nothing(fake_set, tmp_path):
    _, _, sources = fake_set
    teacher, student, record = str(sources["teacher"]), str(sources["student"]), sources["record"]
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"over --budget-mb 0.001"):
        make.make(teacher, student, record, out, tolerance=0.05, budget_mb=0.001)
    with pytest.raises(ConfigError, match=r"float16 storage moves the outputs .*--dtype float32"):
        make.make(teacher, student, record, out, tolerance=0.0)
    with pytest.raises(CheckpointError, match=r"--teacher .* kind 'distill'.*gan-retouch train"):
        make.make(student, student, record, out)
    with pytest.raises(ConfigError, match="not a built-in name"):
        make.make("builtin:teacher", student, record, out)
    bad = tmp_path / "record.yaml"
    bad.write_text(record.read_text().replace("  time: 1 s\n", "", 1))
    with pytest.raises(ConfigError, match=r"teacher.time is missing"):
        make.make(teacher, student, bad, out)
    assert not out.exists()


def test_float32_storage_is_exact(fake_set, tmp_path):
    _, _, sources = fake_set
    manifests = make.make(str(sources["teacher"]), str(sources["student"]), sources["record"], tmp_path,
                          dtype="float32")
    assert manifests["student"]["weights"]["max_output_change"] == 0.0
    stored = torch.load(tmp_path / "student.pt", weights_only=True)
    assert {v.dtype for v in stored.values() if v.is_floating_point()} == {torch.float32}


def test_the_command_line_prints_one_line_per_model_or_one_error(fake_set, tmp_path, capsys):
    _, _, sources = fake_set
    args = ["--teacher", str(sources["teacher"]), "--student", str(sources["student"]), "--record",
            str(sources["record"]), "--out", str(tmp_path / "out"), "--tolerance", "0.05"]
    assert make.main(args) == 0
    out = capsys.readouterr().out
    assert out.count("wrote ") == 2 and "gain" in out
    assert make.main([*args[:-2], "--budget-mb", "0.01"]) == 2
    out = capsys.readouterr().out
    assert "error:" in out and "Traceback" not in out


def test_the_package_data_patterns_take_the_builtin_files():
    """setup.cfg ships gan_retouch/builtin/*.pt and *.json (tests/test_cli.py builds the wheel itself)."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    patterns = [item.strip() for item in config["options.package_data"]["gan_retouch"].split(",")]
    for name in ("builtin/student.pt", "builtin/teacher.json"):
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "*.pt" in ignored and "!gan_retouch/builtin/*.pt" in ignored


def test_rescore_measures_the_files_again_and_checks_them_first(builtin_dir, fake_set):
    path = builtin_dir / "teacher.json"
    manifest = json.loads(path.read_text())
    manifest["score"]["psnr"] = 0.0  # as if recorded on other pairs
    path.write_text(json.dumps(manifest))
    assert make.main(["--rescore", "--out", str(builtin_dir)]) == 0
    assert json.loads(path.read_text())["score"] == fake_set[1]["teacher"]["score"]
    (builtin_dir / "student.pt").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="student's weights .* are truncated"):
        make.rescore(builtin_dir)
