"""The built-in files the package ships (gan_retouch/builtin/): they load, match their manifest's architecture and
hash, fit the budget, state their licence, and reproduce the recorded score on the generated check pairs.

While the package has no manifest at all, this skips ("no built-in model yet"); a manifest without its matching
weights file fails."""

import pytest

from gan_retouch.builtin import store
from gan_retouch.builtin.score import TOLERANCE_DB, check_pairs, pairs_digest, score
from gan_retouch.engine.checkpoint import describe_network, load_generator

BUDGET_BYTES = 10_000_000  # both weights files together (issue 36: <= 10 MB)


@pytest.fixture
def shipped(monkeypatch):
    """The manifests in the package's own folder (never GAN_RETOUCH_BUILTIN_DIR's)."""
    monkeypatch.delenv(store.ENV, raising=False)
    present = [role for role in store.ROLES if (store.PACKAGE_DIR / f"{role}.json").exists()]
    if not present:
        pytest.skip("no built-in model yet")
    return {role: store.read_manifest(role, store.PACKAGE_DIR) for role in store.ROLES}  # both, or it fails


def test_the_shipped_files_match_their_manifests(shipped):
    total = 0
    for role, manifest in shipped.items():
        path = store.verify_weights(manifest, store.PACKAGE_DIR)  # present, its size and sha256
        total += path.stat().st_size
        generator, info = load_generator(f"builtin:{role}")  # strict: the architecture the manifest names
        assert info["generator"] == manifest["generator"], describe_network(info["generator"])
        assert info["kind"] == store.KINDS[role] and info["plan"].to_dict() == manifest["inference"]
        assert sum(v.numel() for v in generator.state_dict().values() if v.is_floating_point()) == \
            manifest["weights"]["parameters"]
        assert "non-commercial" in manifest["licence"]["use"].lower()
        assert all(str(manifest["record"].get(key) or "").strip() for key in ("command", "data", "time", "scores"))
    assert total <= BUDGET_BYTES


def test_the_shipped_models_reproduce_their_recorded_scores(shipped):
    pairs = check_pairs()
    for role, manifest in shipped.items():
        recorded = manifest["score"]
        assert pairs_digest(pairs) == recorded["pairs_sha256"], (
            f"the check pairs changed since the {role}'s score was recorded (the renderer draws other pairs): "
            "python -m gan_retouch.builtin.make --rescore records it again (docs/builtin.md)")
        generator, info = load_generator(f"builtin:{role}")
        result = score(generator, info["plan"], pairs)
        assert abs(result["psnr"] - recorded["psnr"]) <= TOLERANCE_DB, (role, result["psnr"], recorded["psnr"])
        for name, value in recorded["per_pair"].items():
            assert abs(result["per_pair"][name] - value) <= 5 * TOLERANCE_DB, (role, name)
