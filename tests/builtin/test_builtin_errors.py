"""A missing or damaged built-in file is one line (what is wrong, how to reinstall), never a traceback."""

import json

import pytest

from gan_retouch.builtin import store
from gan_retouch.cli import main
from gan_retouch.engine.checkpoint import load_generator
from gan_retouch.errors import CheckpointError

REINSTALL = r"reinstall gan-retouch \(pip install --force-reinstall gan-retouch\)"


def flip_a_byte(path, offset=-100):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def edit_manifest(path, change):
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("damage, match", [
    (lambda d: flip_a_byte(d / "student.pt"), r"student's weights .*student\.pt are damaged: sha256 .* its manifest"),
    (lambda d: truncate(d / "student.pt"), r"student's weights .*student\.pt are truncated: \d+ bytes where its "
                                           r"manifest records \d+"),
    (lambda d: (d / "student.pt").unlink(), r"student's weights .*student\.pt are missing"),
    (lambda d: (d / "student.json").unlink(), r"the built-in student is not installed \(.*student\.json is missing\)"),
    (lambda d: (d / "student.json").write_text("{not json"), r"student's manifest .*student\.json is damaged"),
    (lambda d: edit_manifest(d / "student.json", lambda m: m.pop("generator")),
     r"student's manifest .* is damaged \(generator is not a dict\)"),
    (lambda d: edit_manifest(d / "student.json", lambda m: m["weights"].update(file="../teacher.pt")),
     r"names the weights file '\.\./teacher\.pt', which is not a \.pt file of that folder"),
    (lambda d: edit_manifest(d / "student.json", lambda m: m["generator"]["args"].update(width=16)),
     r"the built-in student \(.*student\.pt\) does not fit the generator its manifest names \(.*shape"),
    (lambda d: edit_manifest(d / "student.json", lambda m: m["generator"]["args"].update(wdth=16)),
     r"does not fit the generator its manifest names \(.*no argument 'wdth'"),
])
def test_damage_is_one_line_that_says_to_reinstall(builtin_dir, monkeypatch, damage, match):
    damage(builtin_dir)
    monkeypatch.delenv(store.ENV)  # as installed: the package's own folder, here given by argument
    monkeypatch.setattr(store, "PACKAGE_DIR", builtin_dir)
    with pytest.raises(CheckpointError, match=match) as caught:
        load_generator("builtin")
    message = str(caught.value)
    assert "\n" not in message
    assert message.endswith("reinstall gan-retouch (pip install --force-reinstall gan-retouch)") or (
        "reinstall gan-retouch (pip install --force-reinstall gan-retouch), or give a checkpoint" in message)


def test_the_command_line_reports_damage_without_a_traceback(builtin_dir, tmp_path, capsys):
    flip_a_byte(builtin_dir / "teacher.pt")
    photo = tmp_path / "in.png"
    photo.write_bytes(b"")  # never read: the model loads first
    code = main(["retouch", str(tmp_path), "-o", str(tmp_path / "out"), "--checkpoint", "builtin:teacher"])
    out = capsys.readouterr().out
    assert code == 2 and "Traceback" not in out
    assert "teacher's weights" in out and "damaged" in out
    assert store.ENV in out  # a damaged file in the folder the variable names: the fix names the variable
    code = main(["distill", "--teacher", "builtin:teacher", "--set", f"checkpoints_root={tmp_path / 'ck'}",
                 "device=cpu"])
    out = capsys.readouterr().out
    assert code == 2 and "damaged" in out and "Traceback" not in out


def test_the_variable_is_never_a_fallback(tmp_path, monkeypatch):
    """An empty folder named by GAN_RETOUCH_BUILTIN_DIR is an error naming it, even where the package has files."""
    monkeypatch.setenv(store.ENV, str(tmp_path))
    with pytest.raises(CheckpointError, match=rf"{tmp_path}/teacher\.json is missing\): {store.ENV}="):
        load_generator("builtin:teacher")
