"""Checkpoints are untrusted input: loading one never runs code, and a foreign or broken file is a clear error."""

import os
from pathlib import Path

import pytest
import torch

from gan_retouch.engine.checkpoint import FORMAT, load_checkpoint, load_generator, save_checkpoint
from gan_retouch.errors import CheckpointError


class Payload:
    """A pickle that writes a file when it is unpickled (what an attacker would put in a shared .pt)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_checkpoint_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "generator": {"name": "autoretouch"}, "x": Payload(marker)}, path)
    for load in (load_checkpoint, load_generator):
        with pytest.raises(CheckpointError, match="refused to load .*evil.pt.*could run code"):
            load(path)
    assert not marker.exists()


def test_truncated_and_foreign_files_are_clear_errors(tmp_path: Path) -> None:
    good = save_checkpoint({"step": 1, "weights": torch.ones(3)}, tmp_path / "good.pt")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(good.read_bytes()[:40])
    with pytest.raises(CheckpointError, match="cannot read checkpoint .*broken.pt"):
        load_checkpoint(broken)
    torch.save({"weights": torch.ones(3)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a gan-retouch checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    assert load_checkpoint(good)["step"] == 1


def test_saved_checkpoint_has_the_usual_permissions_and_no_temp_left(tmp_path: Path) -> None:
    path = save_checkpoint({"step": 3}, tmp_path / "run" / "latest.pt")
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert [p.name for p in path.parent.iterdir()] == ["latest.pt"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
