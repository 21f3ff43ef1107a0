"""The one ``inference`` option group (options/inference.yaml): every plan field declared once, per-command
defaults, the old keys accepted with a note naming the new one, and a field a command does not read refused."""

import re
from pathlib import Path

import pytest
import torch
from engine_utils import tiny_options

from gan_retouch.config import OPTIONS_DIR, check_unused_inference, resolve
from gan_retouch.config.option_docs import read_comments
from gan_retouch.config.renames import RENAMED
from gan_retouch.deploy.export import run_export
from gan_retouch.engine.distributed import DistInfo
from gan_retouch.engine.model import RetouchModel
from gan_retouch.engine.precision import Precision
from gan_retouch.errors import ConfigError
from gan_retouch.evaluate.test import TEST_FIELDS, run_test
from gan_retouch.inference.plan import FIELDS


def test_every_plan_field_is_declared_once_in_the_inference_group() -> None:
    declared: dict[str, list[str]] = {field: [] for field in FIELDS}
    for path in sorted(OPTIONS_DIR.glob("*.yaml")):
        comments, _ = read_comments(path)
        for key in comments:
            if key.rsplit(".", 1)[-1] in FIELDS:
                declared[key.rsplit(".", 1)[-1]].append(f"{path.name}: {key}")
    assert declared == {field: [f"inference.yaml: inference.{field}"] for field in FIELDS}
    for path in sorted(OPTIONS_DIR.glob("*.yaml")):  # a command file may only set its own defaults, in the group
        text = path.read_text()
        for field in FIELDS:
            for match in re.finditer(rf"^( *){field}:", text, re.MULTILINE):
                group = text[: match.start()].rsplit("\n", 2)
                assert path.name == "inference.yaml" or any("inference:" in line for line in group), (path, field)


def test_per_command_defaults() -> None:
    assert resolve("retouch")[0]["inference"]["tile"] is None
    assert (resolve("test")[0]["inference"]["tile"], resolve("test")[0]["inference"]["tile_overlap"]) == (0, 64)
    assert resolve("train")[0]["inference"]["work_size"] == "auto"
    assert resolve("distill")[0]["inference"]["coarse_pass"] is False
    assert resolve("bench")[0]["inference"]["backend"] == "auto"
    assert (resolve("retouch")[0]["inference"]["precision"], resolve("bench")[0]["inference"]["precision"]) == (
        "auto", "fp32")
    assert resolve("train")[0]["inference"]["protect_features"] is False
    assert resolve("retouch")[0]["inference"]["protect_features"] is None  # a run: the checkpoint's own


def test_protect_features_alias_and_the_face_recipes(capsys: pytest.CaptureFixture) -> None:
    options = resolve("retouch", overrides={"retouch": {"protect_features": False}})[0]
    assert options["inference"]["protect_features"] is False
    assert "retouch.protect_features is now inference.protect_features" in " ".join(capsys.readouterr().out.split())
    faces = resolve("train", "faces")[0]
    assert (faces["inference"]["face_width"], faces["inference"]["protect_features"]) == (320, True)
    assert resolve("train", "finetune")[0]["inference"]["strength"] == "auto"


def test_training_saves_the_face_fields_and_strength_of_the_group(tmp_path: Path) -> None:
    from gan_retouch.inference.plan import training_plan

    options = tiny_options(tmp_path, "inference.face_width=320", "inference.protect_features=true",
                           "inference.strength=0.7")
    plan = training_plan(options)
    assert (plan.face_width, plan.protect_features, plan.strength) == (320, True, 0.7)
    assert training_plan(tiny_options(tmp_path, "inference.strength=auto")).strength == 1.0  # chosen after training


def test_bench_refuses_retouchs_auto_precision() -> None:
    from gan_retouch.deploy.bench import run_bench

    options = resolve("bench", overrides={"inference": {"precision": "auto"}, "bench": {"model": "student"}})[0]
    with pytest.raises(ConfigError, match="inference.precision=auto is retouch's probe"):
        run_bench(options)


@pytest.mark.parametrize("command, old", [
    ("retouch", "retouch.tile"), ("bench", "bench.memory_mb"), ("test", "test.tile_overlap"),
    ("export", "export.edit_floor"), ("train", "model.generator.work_size"), ("retouch", "retouch.face_width"),
    ("test", "test.face_width"), ("bench", "bench.face_width"), ("train", "model.generator.face_width"),
    ("train", "train.strength"), ("retouch", "retouch.strength"),
])
def test_old_keys_are_aliases_that_name_the_new_one(command: str, old: str, capsys: pytest.CaptureFixture) -> None:
    group, field = old.rsplit(".", 1)[0], old.rsplit(".", 1)[1]
    value = 0.25 if field in ("edit_floor", "strength") else 256
    nested: dict = {}
    node = nested
    for part in group.split("."):
        node = node.setdefault(part, {})
    node[field] = value
    options, sources = resolve(command, overrides=nested)
    assert options["inference"][field] == value and sources[f"inference.{field}"] == "--set"
    assert f"{old} is now inference.{field}" in " ".join(capsys.readouterr().out.split())
    with pytest.raises(ConfigError, match=f"sets both {re.escape(old)} and inference.{field}"):
        resolve(command, overrides={**nested, "inference": {field: value}})


def test_another_commands_old_key_stays_unknown(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ConfigError, match="unknown option 'retouch'"):
        resolve("export", overrides={"retouch": {"tile": 256}})
    assert "is now" not in capsys.readouterr().out  # no note for a key this command never had


def test_every_alias_points_at_a_plan_field() -> None:
    assert all(new.startswith("inference.") and new.split(".", 1)[1] in FIELDS for new in RENAMED.values())


def test_a_recipe_with_the_old_key_still_trains_the_same(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = tmp_path / "old.yaml"
    recipe.write_text("base: quickstart\nmodel:\n  generator: {coarse_pass: false, work_size: 128}\n")
    options = resolve("train", str(recipe))[0]
    assert (options["inference"]["coarse_pass"], options["inference"]["work_size"]) == (False, 128)
    assert "recipe old.yaml: model.generator.work_size is now inference.work_size" in " ".join(capsys.readouterr().out.split())


def test_a_field_a_command_does_not_read_is_refused(tmp_path: Path) -> None:
    options = resolve("test", overrides={"inference": {"strength": 0.5}, "test": {"checkpoints": ["x.pt"]}})[0]
    assert "tile_overlap" in TEST_FIELDS and "strength" not in TEST_FIELDS
    with pytest.raises(ConfigError, match=r"inference.strength=0.5 does nothing in `gan-retouch test`"):
        run_test(options)
    options = resolve("export", overrides={"inference": {"work_size": 512},
                                           "export": {"checkpoint": str(tmp_path / "m.pt")}})[0]
    with pytest.raises(ConfigError, match=r"inference.work_size=512 does nothing in `gan-retouch export`"):
        run_export(options)
    training = tiny_options(tmp_path, "inference.tile=256")
    with pytest.raises(ConfigError, match=r"inference.tile=256 does nothing in `gan-retouch train`"):
        RetouchModel(training, torch.device("cpu"), DistInfo(), Precision(None, False, False, False))
    check_unused_inference(resolve("retouch", overrides={"inference": {"strength": 0.5}})[0], "retouch",
                           FIELDS, "reads every field")  # no error: retouch reads them all
