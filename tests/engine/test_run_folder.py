"""The run folder: never clobbered (even before the first checkpoint), one live run at a time, clear errors
for unwritable roots, temp files of killed saves cleaned, teacher-only terms refused before step 1."""

import fcntl
import json

import pytest
from engine_utils import tiny_options

from gan_retouch.engine.run_folder import LOCK_NAME, RunFolder
from gan_retouch.errors import ConfigError
from gan_retouch.fileio import OutputError
from gan_retouch.train import build_training


def test_a_run_that_died_before_its_first_checkpoint_is_protected(tmp_path):
    run_dir = tmp_path / "tiny"
    run_dir.mkdir()
    (run_dir / "options.yaml").write_text("name: tiny\n")
    (run_dir / "log.jsonl").write_text(json.dumps({"step": 1, "G": 0.5}) + "\n")
    for resume in ("null", "auto"):
        with pytest.raises(ConfigError, match=r"already holds a run \(log.jsonl, options.yaml\).*no checkpoint"):
            build_training(tiny_options(tmp_path, f"train.resume={resume}"))
    assert (run_dir / "options.yaml").read_text() == "name: tiny\n"
    assert len((run_dir / "log.jsonl").read_text().splitlines()) == 1


def test_a_second_live_run_in_the_same_folder_is_refused(tmp_path):
    first = build_training(tiny_options(tmp_path, "train.steps=1"))
    try:
        with pytest.raises(ConfigError, match="in use by a live run"):
            build_training(tiny_options(tmp_path, "train.steps=1", "train.resume=auto"))
    finally:
        first.run.close()
    handle = open(first.run_dir / LOCK_NAME)
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released: a later run may take it
    handle.close()


def test_unwritable_checkpoints_root_is_reported_before_training(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(OutputError, match=r"cannot create run folder .*a-file/ck/tiny"):
        build_training(tiny_options(blocker / "ck"))


def test_stale_temp_files_of_killed_saves_are_removed(tmp_path):
    run_dir = tmp_path / "tiny"
    loop = build_training(tiny_options(tmp_path, "train.steps=2"))
    loop.fit()
    dead = run_dir / ".latest.pt.999999999.tmp"
    dead.write_bytes(b"half a checkpoint")
    resumed = build_training(tiny_options(tmp_path, "train.steps=3", "train.resume=auto"))
    assert not dead.exists() and (run_dir / "latest.pt").exists()
    resumed.fit()
    assert resumed.step == 3


def test_teacher_only_loss_terms_are_refused_by_train_before_step_one(tmp_path):
    options = tiny_options(tmp_path, extra={"losses": {"distill_output": {"weight": 1.0}}})
    with pytest.raises(ConfigError, match="'distill_output' needs a teacher.*gan-retouch distill"):
        build_training(options)
    assert not (tmp_path / "tiny").exists()


def test_only_rank_zero_judges_the_folder_so_ranks_do_not_race(tmp_path):
    """Under DDP rank 0 locks the folder and writes options.yaml while the other ranks open it: a rank > 0 must
    not take those files for an earlier run (the race that failed two-rank runs now and then)."""
    options = tiny_options(tmp_path)
    main = RunFolder(options, is_main=True)
    try:
        assert main.open() is None
        main.begin(options, None)
        assert (main.path / "options.yaml").exists()
        assert RunFolder(options, is_main=False).open() is None  # a second rank of the same run
    finally:
        main.close()
    with pytest.raises(ConfigError, match="already holds a run"):
        RunFolder(options, is_main=True).open()  # a new run in that folder is still refused
