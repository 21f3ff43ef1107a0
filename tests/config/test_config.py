"""Option loading: precedence, recipe inheritance, validation errors, saved options round-trip."""

from pathlib import Path

import pytest
import yaml

from gan_retouch.config import (
    bundled_recipes,
    load_recipe,
    option_defaults,
    option_docs,
    parse_set_items,
    resolve,
    save_options,
    stage_options,
)
from gan_retouch.errors import ConfigError

COMMANDS = ("train", "distill", "test", "retouch", "synth", "bench", "export")


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_every_command_has_documented_defaults():
    for command in COMMANDS:
        defaults = option_defaults(command)
        docs = option_docs(command)
        assert defaults, command
        from gan_retouch.config import flatten

        undocumented = [key for key in flatten(defaults) if key not in docs]
        assert undocumented == [], f"{command}: options without a comment: {undocumented}"


def test_precedence_defaults_then_recipe_then_set(tmp_path):
    recipe = write(tmp_path / "r.yaml", {"train": {"lr": 1.0e-3, "steps": 50}, "data": {"batch_size": 2}})
    options, sources = resolve("train", str(recipe), parse_set_items(["train.lr=2e-4"]))
    assert options["train"]["lr"] == pytest.approx(2e-4)  # --set wins over the recipe
    assert options["train"]["steps"] == 50  # recipe wins over the default
    assert options["train"]["optimizer"] == "adam"  # default kept
    assert options["data"]["batch_size"] == 2
    assert sources["train.lr"] == "--set" and sources["train.steps"] == "recipe r"
    assert options["name"] == "r"  # run named after the recipe


def test_set_parses_yaml_scalars_and_converts_ints_to_floats():
    options, _ = resolve("train", None, parse_set_items(["train.lr=1", "data.crop=256", "train.ema=0.999",
                                                         "data.augment.hflip=false"]))
    assert options["train"]["lr"] == 1.0 and isinstance(options["train"]["lr"], float)
    assert options["data"]["crop"] == 256
    assert options["data"]["augment"]["hflip"] is False


def test_on_off_yes_no_stay_strings_only_true_false_are_booleans(tmp_path):
    options, _ = resolve("train", None, parse_set_items(["train.amp=off", "train.channels_last=false"]))
    assert options["train"]["amp"] == "off" and options["train"]["channels_last"] is False
    recipe = write(tmp_path / "r.yaml", {})
    recipe.write_text("train:\n  amp: off\n  compile: true\n")
    options, _ = resolve("train", str(recipe))
    assert options["train"]["amp"] == "off" and options["train"]["compile"] is True


def test_recipe_inheritance_by_name_and_relative_path(tmp_path):
    write(tmp_path / "parent.yaml", {"train": {"lr": 1.0e-3, "steps": 10}, "losses": {"l1": {"weight": 1.0}}})
    write(tmp_path / "child.yaml", {"base": "parent", "train": {"steps": 20}, "losses": {"l1": {"weight": 3.0}}})
    merged = load_recipe(str(tmp_path / "child.yaml"))
    assert merged["train"] == {"lr": 1.0e-3, "steps": 20}
    assert merged["losses"]["l1"]["weight"] == 3.0
    bundled_child = write(tmp_path / "quick_child.yaml", {"base": "quickstart", "train": {"steps": 7}})
    options, _ = resolve("train", str(bundled_child))
    assert options["train"]["steps"] == 7
    assert options["model"]["generator"]["args"]["n_blocks"] == 6  # from the bundled quickstart


def test_inheritance_cycle_is_an_error(tmp_path):
    write(tmp_path / "a.yaml", {"base": "b"})
    write(tmp_path / "b.yaml", {"base": "a"})
    with pytest.raises(ConfigError, match="loops"):
        load_recipe(str(tmp_path / "a.yaml"))


def test_unknown_key_names_the_closest_valid_key(tmp_path):
    with pytest.raises(ConfigError, match="Did you mean 'train.lr'"):
        resolve("train", None, parse_set_items(["train.lrr=1e-3"]))
    recipe = write(tmp_path / "typo.yaml", {"trian": {"steps": 3}})
    with pytest.raises(ConfigError, match="Did you mean 'train'"):
        resolve("train", str(recipe))


def test_type_errors_name_the_option_and_the_expected_type():
    with pytest.raises(ConfigError, match="train.steps .*must be of type int"):
        resolve("train", None, parse_set_items(["train.steps=fast"]))
    with pytest.raises(ConfigError, match="data.augment.hflip"):
        resolve("train", None, parse_set_items(["data.augment.hflip=3"]))
    with pytest.raises(ConfigError, match="group of options"):
        resolve("train", None, parse_set_items(["train=3"]))


def test_missing_recipe_suggests_a_bundled_one():
    with pytest.raises(ConfigError, match="Did you mean 'quickstart'"):
        resolve("train", "quickstrat")
    assert {"autoretouch", "quickstart", "pix2pix", "student"} <= set(bundled_recipes())


def test_bad_set_syntax():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_set_items(["train.lr"])


def test_free_form_mappings_merge_and_null_removes_an_entry(tmp_path):
    recipe = write(tmp_path / "r.yaml", {"base": "quickstart", "losses": {"gan": None, "mse": {"weight": 2.0}}})
    options, _ = resolve("train", str(recipe))
    assert "gan" not in options["losses"]
    assert options["losses"]["mse"] == {"weight": 2.0}
    assert options["losses"]["l1"]["mask"] == "soft"


def test_saved_options_reload_to_the_same_values(tmp_path):
    options, _ = resolve("train", "quickstart", parse_set_items(["train.lr=3e-4", "name=run1"]))
    save_options(options, tmp_path / "options.yaml")
    reloaded, _ = resolve("train", str(tmp_path / "options.yaml"))
    assert reloaded == options


def test_stages_are_validated_and_their_losses_replace_the_runs(tmp_path):
    stages = [
        {"name": "a", "steps": 3, "train": {"lr": 5.0e-4}, "losses": {"l1": {"weight": 1.0}}},
        {"name": "b", "steps": 2, "data": {"augment": {"rotate": 0}}, "losses": {"psnr": {"weight": 1.0}}},
    ]
    recipe = write(tmp_path / "s.yaml", {"base": "quickstart", "stages": stages})
    options, _ = resolve("train", str(recipe))
    first, second = stage_options(options, 0), stage_options(options, 1)
    assert first["train"]["lr"] == 5.0e-4 and set(first["losses"]) == {"l1"}
    assert set(second["losses"]) == {"psnr"} and second["train"]["lr"] == options["train"]["lr"]
    bad = write(tmp_path / "bad.yaml", {"stages": [{"name": "x", "steps": 2, "train": {"lrr": 1}}]})
    with pytest.raises(ConfigError, match=r"stages\[0\].*Did you mean 'train.lr'"):
        resolve("train", str(bad))
    no_steps = write(tmp_path / "nosteps.yaml", {"stages": [{"name": "x"}]})
    with pytest.raises(ConfigError, match="steps must be a positive integer"):
        resolve("train", str(no_steps))


def _numeric(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return isinstance(value, list) and bool(value) and all(_numeric(item) for item in value)


def test_every_numeric_option_declares_a_range_that_holds_its_default():
    from gan_retouch.config import flatten, option_ranges

    for command in COMMANDS:
        ranges = option_ranges(command)
        defaults = flatten(option_defaults(command))
        undeclared = [key for key, value in defaults.items() if _numeric(value) and key not in ranges]
        assert undeclared == [], f"{command}: numeric options without a declared range: {undeclared}"
        for key, valid in ranges.items():
            valid.check(f"{command} {key}", defaults[key])  # the default itself is valid


@pytest.mark.parametrize("item, message", [
    ("train.lr=-1", r"train.lr .*= -1.* out of range; valid: \(0, inf\)"),
    ("train.log_every=0", r"train.log_every .* out of range; valid: \[1, inf\)"),
    ("train.ema=2", r"train.ema .* out of range; valid: \[0, 1\)"),
    ("train.steps=0", r"train.steps .* out of range"),
    ("train.steps=-5", r"train.steps .* out of range"),
    ("train.betas=[0.5, 1.5]", r"train.betas .*1.5 is out of range"),
    ("data.batch_size=null", r"data.batch_size .*cannot be null"),
    ("train.lr_d=abc", r"train.lr_d .*must be a number"),
])
def test_out_of_range_values_are_clear_errors(item, message):
    with pytest.raises(ConfigError, match=message):
        resolve("train", "quickstart", parse_set_items([item]))


def test_null_where_the_range_allows_it():
    options, _ = resolve("train", "quickstart", parse_set_items(["data.val_count=null", "train.lr_d=1e-4"]))
    assert options["data"]["val_count"] is None and options["train"]["lr_d"] == pytest.approx(1e-4)


def test_stage_overrides_are_range_checked(tmp_path):
    recipe = write(tmp_path / "s.yaml", {"stages": [{"name": "a", "steps": 2, "train": {"lr": -1.0}}]})
    with pytest.raises(ConfigError, match=r"stages\[0\].*train.lr|train.lr .*stages\[0\]"):
        resolve("train", str(recipe))


def test_range_notation_parses_open_closed_and_null():
    from gan_retouch.config.option_docs import parse_range

    valid = parse_range("(0, 1] | null  meaning")
    assert valid is not None and valid.nullable and valid.contains(1.0) and not valid.contains(0.0)
    assert parse_range("plain meaning (0 = off)") is None


def test_value_checks_reject_booleans():
    from gan_retouch.values import is_integer, is_number

    assert is_number(3) and is_number(0.5) and is_integer(3)
    for value in (True, False, "1", None, [1]):
        assert not is_number(value) and not is_integer(value), value
    assert not is_integer(2.0)


def test_the_finetune_recipe_starts_from_the_builtin_teacher_unless_init_names_another():
    options, _ = resolve("train", "finetune")
    assert options["model"]["generator"]["init"] == "builtin"
    options, _ = resolve("train", "finetune", parse_set_items(["model.generator.init=runs/mine.pt"]))
    assert options["model"]["generator"]["init"] == "runs/mine.pt"


def test_the_student_finetune_recipe_starts_from_the_builtin_student_with_the_teachers_map_opening():
    student, _ = resolve("distill", "student_finetune")
    teacher, _ = resolve("train", "finetune")
    assert student["model"]["generator"]["init"] == "builtin"  # distill resolves it to builtin:student
    assert student["model"]["generator"]["init_open_map"] == teacher["model"]["generator"]["init_open_map"] > 0
    options, _ = resolve("distill", "student_finetune", parse_set_items(["model.generator.init=runs/mine.pt"]))
    assert options["model"]["generator"]["init"] == "runs/mine.pt"


def test_the_face_finetune_recipe_trains_at_the_builtin_face_scale_and_rehearses_its_faces():
    options, _ = resolve("train", "finetune_faces")
    faces, _ = resolve("train", "faces")
    assert options["model"]["generator"]["init"] == "builtin"
    assert options["inference"]["face_width"] == faces["inference"]["face_width"]
    assert options["inference"]["protect_features"] is True and options["data"]["rehearsal"] == 0.5
    family = ("size", "face_scale", "defects", "defect_count", "defect_strength", "defect_scale")
    assert {key: options["data"]["synthetic"][key] for key in family} == {
        key: faces["data"]["synthetic"][key] for key in family}
