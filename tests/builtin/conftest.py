"""A tiny fake built-in set, made once per session by the real maintainer command (``builtin.make``) from tiny
training checkpoints, and the ``builtin_dir`` fixture that points the loader at a copy of it
(GAN_RETOUCH_BUILTIN_DIR)."""

import shutil

import pytest
from builtin_fakes import RECORD, training_checkpoints

from gan_retouch.builtin import make, store


@pytest.fixture(scope="session")
def fake_set(tmp_path_factory):
    """``(folder, manifests, sources)``: the fake built-in files, their manifests, and the training checkpoints and
    the teacher's EMA module they came from."""
    root = tmp_path_factory.mktemp("fake_builtin")
    teacher, student, ema = training_checkpoints(root)
    record = root / "record.yaml"
    record.write_text(RECORD)
    manifests = make.make(str(teacher), str(student), record, root / "builtin", tolerance=0.05)
    return root / "builtin", manifests, {"teacher": teacher, "student": student, "ema": ema, "record": record}


@pytest.fixture
def builtin_dir(fake_set, tmp_path, monkeypatch):
    """A private copy of the fake set, which the loader reads (GAN_RETOUCH_BUILTIN_DIR): tests may damage it."""
    folder = tmp_path / "builtin"
    shutil.copytree(fake_set[0], folder)
    monkeypatch.setenv(store.ENV, str(folder))
    return folder
