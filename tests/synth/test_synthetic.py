"""The synthetic pairs: deterministic, exact masks, defects on skin only, families that the settings define."""

import pytest
import torch
import torch.nn.functional as F

from gan_retouch.config import option_defaults
from gan_retouch.data import build_dataset
from gan_retouch.errors import ConfigError
from gan_retouch.synth import synthesize_pair
from gan_retouch.synth.defects import DefectLayer
from gan_retouch.synth.family import DEFECT_KINDS
from gan_retouch.synth.noise import Draws

KEYS = ("input", "target", "mask", "skin")


@pytest.fixture(autouse=True)
def _one_thread():
    """Generation is many small ops: one thread, as in a loader worker (two threads crawl on a loaded CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_pairs_are_deterministic_per_seed_split_and_index() -> None:
    first, again = synthesize_pair(3, 64, seed=1), synthesize_pair(3, 64, seed=1)
    for key in KEYS:
        assert torch.equal(first[key], again[key])
    assert not torch.equal(first["target"], synthesize_pair(4, 64, seed=1)["target"])
    assert not torch.equal(first["target"], synthesize_pair(3, 64, seed=1, split="val")["target"])
    assert not torch.equal(first["target"], synthesize_pair(3, 64, seed=2)["target"])


@pytest.mark.parametrize("camera", [True, False])
def test_the_mask_is_exactly_where_input_and_target_differ(camera: bool) -> None:
    for index in range(4):
        pair = synthesize_pair(index, 96, camera=camera, clean_fraction=0.0)
        assert pair["input"].shape == pair["target"].shape == (3, 96, 96) and pair["mask"].shape == (1, 96, 96)
        differs = (pair["input"] - pair["target"]).abs().amax(0, keepdim=True) > 0
        assert torch.equal(pair["mask"] > 0, differs) and float(pair["mask"].sum()) > 0
        assert 0.0 <= float(pair["input"].min()) and float(pair["input"].max()) <= 1.0


def test_defects_land_on_skin_only() -> None:
    for index in range(4):
        pair = synthesize_pair(index, 96, camera=False, clean_fraction=0.0, backgrounds=["skin"])
        assert float((pair["mask"] * (pair["skin"] == 0)).sum()) == 0.0


def test_clean_pairs_and_empty_families_change_nothing() -> None:
    pair = synthesize_pair(0, 64, clean_fraction=1.0)
    assert torch.equal(pair["input"], pair["target"]) and float(pair["mask"].sum()) == 0.0
    assert float(synthesize_pair(0, 64, split="val", clean_fraction=1.0)["mask"].sum()) > 0  # val: always defects
    for index in range(3):  # look-alikes (moles, freckles, highlights) are in the target too: nothing to fix
        pair = synthesize_pair(index, 64, defects=[], clean_fraction=0.0, lookalikes=True)
        assert torch.equal(pair["input"], pair["target"])


@pytest.mark.parametrize("kind", DEFECT_KINDS)
def test_every_defect_kind_draws_on_its_own(kind: str) -> None:
    masks = [synthesize_pair(i, 96, defects=[kind], defect_count=[4, 4], clean_fraction=0.0, camera=False)["mask"]
             for i in range(3)]
    assert sum(float(mask.sum()) for mask in masks) > 0


def test_one_kind_comes_in_many_hues() -> None:
    """Each defect draws its own channel balance: the blue share of a patch's darkening varies from pair to pair."""
    blue_shares = []
    for index in range(8):
        pair = synthesize_pair(index, 96, defects=["redness"], defect_count=[1, 1], clean_fraction=0.0, camera=False)
        inside = pair["mask"][0] > 0
        drop = (1.0 - pair["input"] / pair["target"].clamp_min(1e-3))[:, inside]  # per-channel darkening
        blue_shares.append(float(drop[2].sum() / drop.sum()))
    assert max(blue_shares) - min(blue_shares) > 0.05


def test_a_blotch_is_large_and_partly_covers_the_texture() -> None:
    """A blotch reaches far more pixels than a dark spot; on some blotches a flat cover hides part of the texture
    under it (a pixel-scale checkerboard keeps less of its relative contrast), which a tint alone never does."""
    def area(kind: str) -> float:
        return sum(float(synthesize_pair(i, 128, defects=[kind], defect_count=[1, 1], clean_fraction=0.0,
                                         camera=False)["mask"].sum()) for i in range(6))

    assert area("blotch") > 4 * area("dark_spot")
    rows = torch.arange(64)
    clean = (0.5 + 0.1 * (-1.0) ** (rows[:, None] + rows[None, :])).expand(3, -1, -1)

    def contrast(image: torch.Tensor) -> torch.Tensor:
        local = F.avg_pool2d(image[None], 3, 1, 1, count_include_pad=False)[0]
        return (image - local).abs() / local

    kept = []
    for seed in range(8):
        layer = DefectLayer(clean, torch.ones(1, 64, 64), Draws("blotch", seed), [], 20.0)
        layer.add("blotch", 1.0, 1.0)
        output = layer.apply(clean)
        changed = (output - clean).abs().amax(0) > 0.02
        kept.append(float(contrast(output)[:, changed].mean() / contrast(clean)[:, changed].mean()))
    assert min(kept) < 0.8 and max(kept) < 1.1


def test_freckles_are_kept_unless_the_family_says_they_are_defects() -> None:
    changed = [float(synthesize_pair(i, 96, defects=[], freckles_are_defects=True, defect_count=[3, 3],
                                     clean_fraction=0.0, camera=False)["mask"].sum()) for i in range(3)]
    assert sum(changed) > 0


def test_defects_never_land_off_skin() -> None:
    """Eyes, teeth, gums, lips, hair and background are look-alikes a model must keep: never defect targets."""
    for index in range(6):
        pair = synthesize_pair(index, 128, face_scale=[1.8, 2.0], camera=False, defect_count=[30, 40], clean_fraction=0.0)
        assert float(pair["mask"].sum()) > 0
        assert float(pair["mask"][:, pair["skin"][0] == 0].sum()) == 0


def test_skin_tone_range_sets_the_skin_colour() -> None:
    def skin_luma(tone: list[float]) -> float:
        pairs = [synthesize_pair(i, 64, skin_tone=tone, camera=False) for i in range(3)]
        return sum(float((p["target"] * p["skin"]).sum() / p["skin"].sum().clamp_min(1)) for p in pairs) / 3

    assert skin_luma([0.0, 0.1]) > skin_luma([0.9, 1.0]) + 0.25


def test_generation_runs_on_one_thread_and_restores_the_callers_setting() -> None:
    torch.set_num_threads(2)
    synthesize_pair(0, 48)
    assert torch.get_num_threads() == 2
    with pytest.raises(ConfigError):
        synthesize_pair(0, 48, defects=["zits"])
    assert torch.get_num_threads() == 2


def test_same_face_at_any_size() -> None:
    small = synthesize_pair(7, 64, camera=False)["target"]
    large = synthesize_pair(7, 128, camera=False)["target"]
    shrunk = torch.nn.functional.avg_pool2d(large[None], 2)[0]
    assert float((shrunk - small).abs().mean()) < 0.03


@pytest.mark.parametrize(("setting", "message"), [
    ({"defects": ["zits"]}, "data.synthetic.defects: unknown value 'zits'"),
    ({"defect_count": [5, 1]}, "data.synthetic.defect_count must be"),
    ({"defect_strength": [0.5, 2.0]}, "defect_strength"),
    ({"clean_fraction": 1.5}, "clean_fraction must be a probability"),
    ({"mode": "wild"}, "mode: unknown value 'wild'; valid: standard, subtle"),
    ({"backgrounds": []}, "backgrounds is empty"),
    ({"camera": "yes"}, "camera must be true or false"),
])
def test_bad_family_settings_are_clear_errors(setting: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        synthesize_pair(0, 64, **setting)


def test_bad_size_split_and_index() -> None:
    with pytest.raises(ConfigError, match="size"):
        synthesize_pair(0, 16)
    with pytest.raises(ConfigError, match="split"):
        synthesize_pair(0, 64, split="training")
    with pytest.raises(ConfigError, match="index"):
        synthesize_pair(-1, 64)


def _synthetic_data(**changes) -> dict:
    synthetic = {**option_defaults("common")["data"]["synthetic"], "size": 64, "val_count": 5, "test_count": 2}
    data = {"source": "synthetic", "val_count": 3, "crop": 48, "resize": None,
            "augment": {"hflip": True, "rotate": 10, "salt_pepper": 0.0}, "synthetic": synthetic}
    data.update(changes)
    return data


def test_synthetic_dataset_splits_and_virtual_indices() -> None:
    train = build_dataset(_synthetic_data(), "train", seed=3)
    assert len(train) >= 2**30
    a, b = train[12], train[12]
    assert a["input"].shape == (3, 48, 48) and set(a) == {"input", "target", "mask", "skin", "name"}
    for key in KEYS:
        assert torch.equal(a[key], b[key])
    assert not torch.equal(train[12]["target"], build_dataset(_synthetic_data(), "train", seed=4)[12]["target"])
    val = build_dataset(_synthetic_data(), "val")
    assert len(val) == 3 and val[0]["input"].shape == (3, 64, 64)
    assert torch.equal(val[1]["target"], synthesize_pair(1, 64, split="val")["target"])
    assert len(build_dataset(_synthetic_data(), "test")) == 2
    finite = build_dataset(_synthetic_data(synthetic={**_synthetic_data()["synthetic"], "train_count": 4}), "train")
    assert len(finite) == 4 and finite[6]["name"] == finite[2]["name"]


def test_crops_per_face_cuts_consecutive_training_items_from_one_face(monkeypatch: pytest.MonkeyPatch) -> None:
    import gan_retouch.data.datasets as datasets

    generated = []

    def counting(index: int, *args, **kwargs) -> dict:
        generated.append(index)
        return synthesize_pair(index, *args, **kwargs)

    monkeypatch.setattr(datasets, "synthesize_pair", counting)
    data = _synthetic_data(synthetic={**_synthetic_data()["synthetic"], "crops_per_face": 2})
    train = build_dataset(data, "train", seed=3)
    items = [train[index] for index in range(6)]
    assert generated == [0, 1, 2]  # three faces for six items
    assert items[0]["name"] == items[1]["name"] != items[2]["name"]
    assert not torch.equal(items[0]["input"], items[1]["input"])  # same face, another crop
    assert torch.equal(items[1]["input"], build_dataset(data, "train", seed=3)[1]["input"])  # deterministic
    val = build_dataset(data, "val")
    assert val[0]["name"] != val[1]["name"]  # validation and test pairs are never repeated


def test_a_family_setting_reaches_the_pairs_and_bad_ones_fail_early() -> None:
    only_redness = _synthetic_data(synthetic={**_synthetic_data()["synthetic"], "defects": [], "clean_fraction": 0.0})
    item = build_dataset(only_redness, "val")[0]
    assert torch.equal(item["input"], item["target"])
    with pytest.raises(ConfigError, match="defects"):
        build_dataset(_synthetic_data(synthetic={**_synthetic_data()["synthetic"], "defects": ["zits"]}), "val")


def test_synth_family_defaults_mirror_data_synthetic() -> None:
    family = option_defaults("synth")["synth"]["family"]
    synthetic = option_defaults("common")["data"]["synthetic"]
    assert family == {key: synthetic[key] for key in family}
