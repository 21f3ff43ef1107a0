"""Inference backends: fused torch equals the plain network, ONNX Runtime equals PyTorch, auto picks one."""

import json
import os
from pathlib import Path

import pytest
import torch

import gan_retouch.nets  # noqa: F401  (registers the generators)
from gan_retouch.deploy import backends
from gan_retouch.deploy.backends import TorchBackend, existing_export, select_backend
from gan_retouch.errors import ConfigError
from gan_retouch.inference.plan import InferencePlan, ModelFacts, resolve_plan
from gan_retouch.registry import GENERATORS


def tiny_student() -> torch.nn.Module:
    model = GENERATORS.build("student_fast", width=4, blocks=1, context=1)
    torch.nn.init.normal_(model.head.weight, std=0.3, generator=torch.Generator().manual_seed(0))
    return model.eval()


@pytest.mark.parametrize("channels_last", [False, True])
def test_torch_backend_equals_the_plain_network(channels_last: bool) -> None:
    model = tiny_student()
    backend = TorchBackend(model, torch.device("cpu"), "fp32", channels_last)
    image = torch.rand(2, 3, 45, 70)
    with torch.no_grad():
        expected = model(image)
    assert (expected - image).abs().max() > 1e-2
    assert torch.allclose(backend(image), expected, atol=1e-5)
    assert ("channels_last" if channels_last else "contiguous") in backend.description


def test_auto_without_an_export_picks_a_torch_format() -> None:
    backend = select_backend(tiny_student(), torch.device("cpu"), InferencePlan(backend="auto"))
    assert backend.description.startswith("torch fp32 on cpu") and "fastest of 2" in backend.description


def test_onnxruntime_backend_matches_pytorch(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    model = tiny_student()
    backend = select_backend(model, torch.device("cpu"), InferencePlan(backend="onnxruntime"))
    assert backend.description.startswith("onnxruntime") and "parity with torch" in backend.description
    image = torch.rand(1, 3, 131, 77)  # not a multiple of the stride, never seen at export time
    with torch.no_grad():
        expected = model(image)
    assert (backend(image) - expected).abs().max().item() < 1e-4


def test_existing_export_must_be_newer_than_the_checkpoint(tmp_path: Path) -> None:
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"weights")
    assert existing_export(str(checkpoint)) is None
    export = tmp_path / "best.onnx"
    export.write_bytes(b"graph")
    assert existing_export(str(checkpoint)) == export
    stamp = export.stat().st_mtime
    os.utime(checkpoint, (stamp + 10, stamp + 10))
    assert existing_export(str(checkpoint)) is None


def test_bad_backend_settings() -> None:
    facts = ModelFacts(edit_map=False)
    with pytest.raises(ConfigError, match="retouch.backend must be one of auto, torch, onnxruntime"):
        resolve_plan(InferencePlan(), {"backend": "tensorrt"}, "retouch", facts)
    with pytest.raises(ConfigError, match="retouch.backend=onnxruntime runs the fp32 export"):
        resolve_plan(InferencePlan(), {"backend": "onnxruntime", "precision": "fp16"}, "retouch", facts, "cuda")


def test_auto_remembers_its_choice_per_model_file_and_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"weights")
    timed = []

    def probe(backend, device):  # contiguous is "faster" the first time
        timed.append(backend.description)
        return 1.0 if "contiguous" in backend.description else 2.0

    monkeypatch.setattr(backends, "probe_ms", probe)
    plan = InferencePlan(backend="auto")
    first = select_backend(tiny_student(), torch.device("cpu"), plan, str(checkpoint))
    assert len(timed) == 2 and "contiguous" in first.description and "fastest of 2" in first.description
    cache = tmp_path / "cache" / "gan-retouch" / "backend-probes.json"
    assert json.loads(cache.read_text()).popitem()[1]["choice"] == "torch"
    second = select_backend(tiny_student(), torch.device("cpu"), plan, str(checkpoint), probe=False)
    assert len(timed) == 2 and "remembered in" in second.description and not second.channels_last
    os.utime(checkpoint, ns=(1, 1))  # another model file (or the same one rewritten): probed again
    select_backend(tiny_student(), torch.device("cpu"), plan, str(checkpoint))
    assert len(timed) == 4
    os.utime(checkpoint, ns=(2, 2))
    single = select_backend(tiny_student(), torch.device("cpu"), plan, str(checkpoint), probe=False)
    assert len(timed) == 4 and single.description.endswith("(not probed: one image)") and single.channels_last
    cache.write_text("{not json")
    select_backend(tiny_student(), torch.device("cpu"), plan, str(checkpoint))  # a damaged cache: probed, rewritten
    assert len(timed) == 6 and json.loads(cache.read_text())
