"""The command line: every subcommand's --help, resolved options in help, clean errors, packaging."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gan_retouch.cli import COMMAND_PACKAGES, DESCRIPTIONS, FLAGS, entry_point, main
from gan_retouch.config import OPTIONS_DIR, load_yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", sorted(FLAGS))
def test_every_subcommand_has_help_listing_its_options(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "--set" in out and "--device" in out
    assert "seed" in out  # the options table lists every option with its default and meaning


@pytest.mark.parametrize("command", sorted(DESCRIPTIONS))
def test_every_command_follows_the_naming_rule(command):
    """`gan-retouch X` is run_X of the module <package>.X, and options/X.yaml holds its option group X."""
    run = entry_point(command)
    assert run.__name__ == f"run_{command}"
    assert sys.modules[f"{COMMAND_PACKAGES[command]}.{command}"] is not None
    assert command in load_yaml(OPTIONS_DIR / f"{command}.yaml")
    assert set(COMMAND_PACKAGES) == set(DESCRIPTIONS) == set(FLAGS)


def test_train_help_with_a_recipe_shows_the_resolved_values(capsys):
    assert main(["train", "--recipe", "quickstart", "--help"]) == 0
    out = capsys.readouterr().out
    assert "recipe quickstart" in out  # the source column names where a value came from
    assert "model.generator.args" in out and "n_blocks" in out


def test_unknown_option_is_a_clean_error_with_a_suggestion(capsys):
    assert main(["train", "--set", "train.lrr=1e-3"]) == 2
    assert "Did you mean 'train.lr'" in capsys.readouterr().out


def test_cuda_asked_for_without_cuda_is_a_clear_error():
    import torch

    from gan_retouch.errors import ConfigError
    from gan_retouch.runtime import resolve_device

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("tpu")
    assert resolve_device("auto").type == "cpu"


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "gan_retouch", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "distill" in result.stdout


def test_a_built_wheel_ships_options_and_recipes(tmp_path):
    """A non-editable install finds the option defaults and recipes (they are package data in the wheel)."""
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"),
         str(ROOT)], capture_output=True, text=True,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("gan_retouch-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "gan_retouch/bundled/options/train.yaml" in names
    assert "gan_retouch/bundled/recipes/quickstart.yaml" in names
    builtin = ROOT / "gan_retouch" / "builtin"  # the built-in models' files, when the checkout has them
    for shipped in [*builtin.glob("*.json"), *builtin.glob("*.pt")]:
        assert f"gan_retouch/builtin/{shipped.name}" in names
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    probe = ("from gan_retouch.config import resolve, bundled_recipes; import gan_retouch;"
             "print(gan_retouch.__file__); print(bundled_recipes()); print(resolve('train', 'quickstart')[0]['name'])")
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(str(target))  # the installed copy, not the checkout
    assert "quickstart" in lines[1] and lines[2] == "quickstart"


def test_list_shows_every_registry_with_unmangled_descriptions(capsys):
    assert main(["train", "--list"]) == 0
    out = capsys.readouterr().out
    for title in ("generators", "discriminators", "losses"):
        assert title in out
    assert "autoretouch" in out and "patchgan" in out and "distill_output" in out
    assert "[[features" in out  # square brackets in a docstring are text, not console markup
