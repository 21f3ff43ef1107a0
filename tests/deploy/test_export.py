"""`gan-retouch export`: ONNX and TorchScript for the teacher and the student, checked against PyTorch."""

import os
import sys
from pathlib import Path

import pytest
import torch

import gan_retouch.nets  # noqa: F401  (registers the generators)
from gan_retouch.cli import main
from gan_retouch.deploy.export import export_model
from gan_retouch.engine.checkpoint import load_generator, save_checkpoint
from gan_retouch.errors import ConfigError, GanRetouchError
from gan_retouch.registry import GENERATORS

TINY = {
    "autoretouch": {"ngf": 4, "n_blocks": 1},
    "student": {"width": 4, "depth": 1, "levels": 2},
    "student_fast": {"width": 4, "blocks": 1, "context": 1},
}
SIZES = [[1, 32, 32], [2, 37, 29]]  # the second is not a multiple of either network's stride


def perturbed(name: str, **args) -> torch.nn.Module:
    """A tiny generator (``args`` added to its tiny ones) with random non-zero weights (a fresh student is the
    identity, which proves nothing)."""
    generator = GENERATORS.build(name, **TINY[name], **args)
    with torch.no_grad():
        for parameter in generator.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    return generator.eval()


def write_checkpoint(folder: Path, name: str, **args) -> Path:
    generator = perturbed(name, **args)
    entry = {"name": name, "args": {**TINY[name], **args}, "state_dict": generator.state_dict()}
    folder.mkdir(parents=True, exist_ok=True)
    return save_checkpoint({"kind": "train", "options": {}, "generator": entry}, folder / f"{name}.pt")


@pytest.mark.parametrize("name", ["autoretouch", "student", "student_fast"])
def test_onnx_export_keeps_parity_at_odd_sizes(tmp_path: Path, name: str) -> None:
    import onnxruntime

    generator = perturbed(name)
    path = tmp_path / f"{name}.onnx"
    results = export_model(generator, "onnx", path, check_sizes=SIZES)
    assert path.is_file()
    assert [r["shape"] for r in results] == [SIZES[0], SIZES[0], SIZES[1], SIZES[1]]
    assert max(r["max_abs_diff"] for r in results) < 1e-3
    # independently of the built-in check: a size never seen at export time, batch 3
    image = torch.rand(3, 3, 41, 23)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"image": image.numpy()})
    with torch.no_grad():
        expected = generator(image)
    assert out.shape == (3, 3, 41, 23)
    assert (torch.from_numpy(out) - expected).abs().max().item() < 1e-3
    assert (expected - image).abs().max().item() > 1e-2  # the network really changes the image


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
@pytest.mark.parametrize("name", ["autoretouch", "student", "student_fast"])
def test_torchscript_export_keeps_parity_at_odd_sizes(tmp_path: Path, name: str) -> None:
    generator = perturbed(name)
    path = tmp_path / f"{name}.ts"
    results = export_model(generator, "torchscript", path, check_sizes=SIZES)
    assert max(r["max_abs_diff"] for r in results) < 1e-4
    loaded = torch.jit.load(str(path))
    image = torch.rand(1, 3, 45, 51)
    with torch.no_grad():
        assert torch.allclose(loaded(image), generator(image), atol=1e-5)


def test_fp16_export_is_close_and_a_failed_check_leaves_nothing(tmp_path: Path) -> None:
    generator = perturbed("student")
    path = tmp_path / "student-fp16.ts"
    results = export_model(generator, "torchscript", path, fp16=True, tolerance=1e-2, check_sizes=SIZES[1:])
    worst = max(r["max_abs_diff"] for r in results)
    assert 0 < worst < 1e-2  # half precision rounds, but stays close
    path.unlink()
    with pytest.raises(GanRetouchError, match="parity check failed"):
        export_model(generator, "torchscript", path, fp16=True, tolerance=worst / 10, check_sizes=SIZES[1:])
    assert list(tmp_path.iterdir()) == []


def test_cli_export_writes_next_to_the_checkpoint(tmp_path: Path) -> None:
    checkpoint = write_checkpoint(tmp_path, "student")
    status = main(["export", "--checkpoint", str(checkpoint), "--format", "torchscript",
                   "--set", "export.check_sizes=[[1,33,35]]"])
    assert status == 0
    assert (tmp_path / "student.ts").is_file()


def test_cli_export_builds_in_another_edit_floor_under_its_own_name(tmp_path: Path) -> None:
    checkpoint = write_checkpoint(tmp_path, "student", edit_mask=True)
    base = ["export", "--checkpoint", str(checkpoint), "--format", "torchscript", "--set", "export.check_sizes=[[1,32,32]]"]
    assert main(base) == 0 and main([*base, "--edit-floor", "0.5"]) == 0
    x = torch.rand(1, 3, 32, 32)
    own, floored = (torch.jit.load(tmp_path / name)(x)[0] for name in ("student.ts", "student-floor0.5.ts"))
    generator = load_generator(checkpoint)[0]
    with torch.no_grad():
        expected = generator(x, floor=0.5)[0]
    assert (floored - expected).abs().max() < 1e-4  # the floor is built into the file
    assert (floored - x).abs().sum() < (own - x).abs().sum()  # it leaves more pixels at the input
    assert main([*base, "--edit-floor", "1.0"]) == 2
    plain = write_checkpoint(tmp_path / "plain", "student")  # no edit map
    assert main(["export", "--checkpoint", str(plain), "--edit-floor", "0.3"]) == 2
    assert not (tmp_path / "plain" / "student-floor0.3.onnx").exists()


def test_cli_export_bad_inputs(tmp_path: Path) -> None:
    assert main(["export", "--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert main(["export"]) == 2
    with pytest.raises(ConfigError, match="export.format"):
        export_model(perturbed("student"), "tflite", tmp_path / "x.tflite")


def test_missing_onnxruntime_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(ConfigError, match=r"gan-retouch\[export\]"):
        export_model(perturbed("student"), "onnx", tmp_path / "s.onnx")
    assert not (tmp_path / "s.onnx").exists()


def test_export_into_an_unwritable_folder_is_one_line_before_exporting(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    checkpoint = write_checkpoint(tmp_path, "student")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    target = blocker / "models" / "student.onnx"  # a folder that cannot exist: a regular file is in the way
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(target)]) != 0
    message = capsys.readouterr().out.strip()
    assert str(blocker / "models") in " ".join(message.split()) and "Traceback" not in message
    assert "cannot create export output folder" in " ".join(message.split())


@pytest.mark.skipif(os.geteuid() == 0, reason="permissions do not bind for root")
def test_export_into_a_read_only_folder_names_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    checkpoint = write_checkpoint(tmp_path, "student")
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert main(["export", "--checkpoint", str(checkpoint), "--out", str(folder / "s.onnx")]) != 0
        assert "not writable" in capsys.readouterr().out and not any(folder.iterdir())
    finally:
        folder.chmod(0o755)


def test_export_says_what_of_the_plan_the_file_holds(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = {**TINY["student"], "edit_mask": True, "edit_floor": 0.4}
    generator = perturbed("student", edit_mask=True, edit_floor=0.4)
    entry = {"name": "student", "args": args, "state_dict": generator.state_dict()}
    inference = {"work_size": 64, "coarse_pass": True, "edit_floor": 0.4}
    checkpoint = save_checkpoint({"kind": "train", "options": {}, "generator": entry, "inference": inference},
                                 tmp_path / "s.pt")
    assert main(["export", "--checkpoint", str(checkpoint), "--format", "torchscript",
                 "--set", "export.check_sizes=[[1,32,32]]"]) == 0
    report = " ".join(capsys.readouterr().out.split())
    assert "built in: the edit floor 0.4" in report
    assert "not in the file: the working size (64 px)" in report
    assert "not in the file: the coarse pass" in report and "`retouch` runs the coarse pass with PyTorch" in report
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        expected = generator(x, floor=0.4)[0]
    assert (torch.jit.load(tmp_path / "s.ts")(x)[0] - expected).abs().max() < 1e-4


def test_the_parity_reference_and_the_exported_run_compute_without_tf32() -> None:
    """On Ampere and newer GPUs cuDNN convolutions default to TF32, which moves the student's output by about the
    parity tolerance: both sides of the check run in full fp32, and the caller's setting comes back after."""
    from gan_retouch.deploy.export_check import check_parity

    seen = []

    class Recording(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x, mask=None, floor=None):
            seen.append((torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision))
            return self.inner(x)

    generator = Recording(perturbed("student"))

    def runner(inputs):
        seen.append((torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision))
        with torch.no_grad():
            return [generator.inner(inputs[0])]

    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    saved = conv.fp32_precision, matmul.fp32_precision
    conv.fp32_precision = matmul.fp32_precision = "tf32"  # what an H100 computes fp32 convolutions with by default
    try:
        results = check_parity(generator, runner, [[1, 32, 32]], 0, torch.device("cpu"))
        assert (conv.fp32_precision, matmul.fp32_precision) == ("tf32", "tf32")
    finally:
        conv.fp32_precision, matmul.fp32_precision = saved
    assert len(seen) == 4 and set(seen) == {("ieee", "ieee")}
    assert all(r["max_abs_diff"] == 0.0 for r in results)


def test_onnxruntime_on_cuda_runs_without_tf32_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime

    from gan_retouch.deploy.export_check import load_runner

    asked = {}

    class Session:
        def __init__(self, path, providers):
            asked["providers"] = providers

        def get_inputs(self):
            return []

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider",
                                                                        "CPUExecutionProvider"])
    monkeypatch.setattr(onnxruntime, "InferenceSession", Session)
    load_runner(tmp_path / "model.onnx", "onnx", torch.device("cuda"))
    assert asked["providers"][0] == ("CUDAExecutionProvider", {"use_tf32": "0"})
