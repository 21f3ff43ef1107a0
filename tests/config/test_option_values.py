"""Enumerations declared next to the option (``# auto | off | bf16 | fp16``), checked when options load, in stage
overrides and in options read back from a checkpoint, with the closest valid value in the error."""

import re

import pytest

from gan_retouch.config import (
    check_saved,
    flatten,
    option_defaults,
    option_docs,
    option_enumerations,
    option_values,
    parse_set_items,
    resolve,
)
from gan_retouch.config.option_docs import parse_allowed
from gan_retouch.errors import ConfigError

COMMANDS = ("train", "distill", "test", "retouch", "synth", "bench", "export", "prepare")


def test_every_declaration_holds_its_own_default():
    for command in COMMANDS:
        defaults = flatten(option_defaults(command))
        for key, allowed in option_values(command).items():
            allowed.check(f"{command} {key}", defaults[key])


def test_a_comment_that_starts_like_an_enumeration_is_one():
    """Prose that starts with ``a | b`` but does not parse (``cuda:N``, ``webp:``) would silently declare nothing."""
    looks_like_one = re.compile(r"^[\w.\-]+ \| ")
    for command in COMMANDS:
        for key, comment in option_docs(command).items():
            if looks_like_one.match(comment):
                assert parse_allowed(comment) is not None, f"{command} {key}: {comment!r}"


def test_enumerations_agree_with_the_code_that_acts_on_them():
    from gan_retouch.data.datasets import DATASET_SPLITS, SOURCES
    from gan_retouch.data.holdout import HOLDOUT_MODES
    from gan_retouch.deploy.export import FORMATS as EXPORT_FORMATS
    from gan_retouch.deploy.image_files import FORMATS as IMAGE_FORMATS
    from gan_retouch.engine.optim import SCHEDULERS
    from gan_retouch.evaluate.validation import MASK_METRICS, METRICS
    from gan_retouch.inference.plan import BACKENDS
    from gan_retouch.runtime import PRECISION_DTYPES
    from gan_retouch.synth.family import BACKGROUND_KINDS, DEFECT_KINDS, MODES
    from gan_retouch.synth.synthetic import SPLITS

    expected = {
        ("train", "data.source"): SOURCES,
        ("train", "data.synthetic.mode"): MODES,
        ("synth", "synth.family.mode"): MODES,
        ("train", "data.synthetic.defects"): DEFECT_KINDS,
        ("synth", "synth.family.defects"): DEFECT_KINDS,
        ("train", "data.synthetic.backgrounds"): BACKGROUND_KINDS,
        ("synth", "synth.family.backgrounds"): BACKGROUND_KINDS,
        ("synth", "synth.splits"): SPLITS,
        ("train", "train.scheduler"): SCHEDULERS,
        ("train", "val.metric"): (*METRICS, "lpips", *MASK_METRICS),
        ("test", "test.split"): ("auto", *DATASET_SPLITS),
        ("train", "data.holdout"): HOLDOUT_MODES,
        ("train", "val.split"): ("val", "train"),
        ("retouch", "retouch.format"): ("same", *IMAGE_FORMATS),
        ("export", "export.format"): tuple(EXPORT_FORMATS),
        ("retouch", "inference.precision"): ("auto", *PRECISION_DTYPES),  # auto: deploy/half.py
        ("bench", "inference.precision"): ("auto", *PRECISION_DTYPES),
        ("retouch", "inference.backend"): BACKENDS,
        ("bench", "inference.backend"): BACKENDS,
    }
    for (command, key), valid in expected.items():
        assert set(option_enumerations(command)[key].choices) == set(valid), (command, key)


@pytest.mark.parametrize("command, item, message", [
    ("train", "train.amp=bf61", r"train.amp \(from --set\) = 'bf61' is not valid; valid: auto \| off \| bf16 \| fp16. "
                                r"Did you mean 'bf16'\?"),
    ("train", "train.optimizer=adamm", r"Did you mean 'adam"),
    ("train", "train.scheduler=cosin", r"Did you mean 'cosine'"),
    ("train", "train.nan_policy=ignore", r"train.nan_policy .*valid: stop \| skip"),
    ("train", "train.channels_last=yes", r"train.channels_last .*'yes' is not valid; valid: auto \| true \| false"),
    ("train", "data.source=folders", r"Did you mean 'folder'"),
    ("train", "data.synthetic.defects=[acne, dark_spots]", r"data.synthetic.defects .*'dark_spots'.*Did you mean 'dark_spot'"),
    ("train", "inference.work_size=-1", r"inference.work_size .*= -1 is out of range; valid: auto \| null \| \[0"),
    ("train", "inference.work_size=big", r"inference.work_size .*'big' is not valid"),
    ("test", "inference.coarse_pass=maybe", r"inference.coarse_pass .*'maybe' is not valid; valid: null \| true \| false"),
    ("retouch", "retouch.format=pgn", r"retouch.format .*Did you mean 'png'"),
    ("bench", "bench.uhd=4", r"bench.uhd .*= 4 is not valid; valid: auto \| true \| false"),
    ("export", "export.format=onx", r"Did you mean 'onnx'"),
    ("synth", "synth.splits=[train, vall]", r"synth.splits .*'vall'.*Did you mean 'val'"),
])
def test_a_value_outside_the_enumeration_is_a_clear_error(command, item, message):
    with pytest.raises(ConfigError, match=message):
        resolve(command, None, parse_set_items([item]))


def test_named_values_and_ranges_are_accepted():
    options, _ = resolve("train", None, parse_set_items(
        ["train.amp=bf16", "train.channels_last=true", "inference.work_size=512", "data.pin_memory=false",
         "data.synthetic.defects=[blotch]"]))
    assert options["train"]["channels_last"] is True and options["inference"]["work_size"] == 512
    assert options["data"]["pin_memory"] is False and options["data"]["synthetic"]["defects"] == ["blotch"]
    options, _ = resolve("test", None, parse_set_items(["inference.coarse_pass=false", "inference.work_size=null"]))
    assert options["inference"]["coarse_pass"] is False and options["inference"]["work_size"] is None


def test_stage_overrides_are_checked_against_the_enumerations(tmp_path):
    recipe = tmp_path / "s.yaml"
    recipe.write_text("stages:\n  - {name: a, steps: 2, train: {scheduler: cosin}}\n")
    with pytest.raises(ConfigError, match=r"train.scheduler \(from stages\[0\]\) = 'cosin'.*Did you mean 'cosine'"):
        resolve("train", str(recipe))


def test_options_read_back_from_a_checkpoint_are_checked_unknown_keys_left_alone():
    check_saved("test", {"data": {"source": "folder", "a_key_from_another_version": 1}}, "the saved options")
    with pytest.raises(ConfigError, match=r"data.source \(from the saved options\) = 'folders'.*Did you mean 'folder'"):
        check_saved("test", {"data": {"source": "folders"}}, "the saved options")
    with pytest.raises(ConfigError, match=r"train.lr \(from stages\[0\]\) = -1"):
        check_saved("train", {"stages": [{"name": "a", "steps": 1, "train": {"lr": -1}}]}, "the saved options")


def test_a_resumed_schedule_is_checked_before_it_is_used():
    from gan_retouch.engine.resume import resumed_options

    options = resolve("train", "quickstart")[0]
    saved = {**options, "train": {**options["train"], "scheduler": "cosin"}}
    with pytest.raises(ConfigError, match=r"train.scheduler \(from the options saved in the resumed checkpoint\)"):
        resumed_options(options, saved, [], 10)


@pytest.mark.parametrize("comment, expected", [
    ("auto | off | bf16 | fp16  mixed precision", ("auto", "off", "bf16", "fp16")),
    ("null | true | false  the coarse pass", (None, True, False)),
    ("auto | null | [32, inf)  working size", ("auto", None)),
    ("[0, 1) | null  a floor", (None,)),
])
def test_declarations_parse(comment, expected):
    allowed = parse_allowed(comment)
    assert allowed is not None and allowed.choices == expected


@pytest.mark.parametrize("comment", [
    "auto, cpu, cuda or cuda:N (auto = cuda:0 when available)",
    "auto | cpu | cuda | cuda:N (auto = ...)",  # cuda:N is no value: the whole comment declares nothing
    "same | png | webp: output format",
    "true = never download",
    "auto = the first that exists",
    "plain meaning (0 = off)",
])
def test_prose_declares_nothing(comment):
    assert parse_allowed(comment) is None


def test_true_is_not_one_and_one_is_not_true():
    allowed = parse_allowed("auto | true | false  x")
    assert allowed.allows(True) and not allowed.allows(1) and not allowed.allows(0)
    assert not parse_allowed("[0, 1]  x").allows(True)
