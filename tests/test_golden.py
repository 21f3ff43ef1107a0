"""Nothing changes by accident: fixed checkpoints retouch a fixed photo into the very bytes written before a
refactor, and every built-in generator keeps its state_dict key names (checkpoints keep loading).

The fixtures were written by ``tests/fixtures/golden/make.py`` from the code before the change; rerun it only
when an output is meant to change, and say so in the commit."""

import importlib.util
import json
from pathlib import Path

import pytest

from gan_retouch.cli import main

GOLDEN = Path(__file__).parent / "fixtures" / "golden"


def make_module():
    spec = importlib.util.spec_from_file_location("golden_make", GOLDEN / "make.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKE = make_module()


@pytest.mark.parametrize("tag", list(MAKE.RUNS))
@pytest.mark.parametrize("name", list(MAKE.MODELS))
def test_retouch_is_byte_for_byte_unchanged(name: str, tag: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main(["retouch", str(GOLDEN / "input.png"), "-o", str(out), "--checkpoint", str(GOLDEN / f"{name}.pt"),
                 "--device", "cpu", "--set", "retouch.backend=torch", *MAKE.RUNS[tag]])
    assert code == 0
    assert (out / "input.png").read_bytes() == (GOLDEN / f"{name}{tag}.png").read_bytes()


def test_generator_key_names_are_unchanged() -> None:
    expected = json.loads((GOLDEN / "generator_keys.json").read_text())
    found = MAKE.generator_keys()
    assert {form: found.get(form) for form in expected} == expected  # new generators may be added
