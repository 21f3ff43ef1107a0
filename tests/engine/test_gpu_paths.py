"""GPU code paths checked on the CPU: mocked capability queries, a fake NVML, a faked checkpoint state."""

import sys
from types import SimpleNamespace

import pytest
import torch
from engine_utils import tiny_options

from gan_retouch.engine import distributed
from gan_retouch.engine.checkpoint import load_checkpoint
from gan_retouch.engine.distributed import DistInfo, bind_device
from gan_retouch.engine.model import RetouchModel
from gan_retouch.engine.monitor import GpuMonitor
from gan_retouch.engine.networks import mask_trained_in_every_stage, parameters_without_gradient
from gan_retouch.engine.precision import Precision, resolve_precision
from gan_retouch.engine.stage import plan_stages
from gan_retouch.registry import GENERATORS
from gan_retouch.train import build_training

AUTO = {"amp": "auto", "channels_last": "auto", "compile": "auto"}


@pytest.mark.parametrize(("capability", "dtype"), [((7, 0), torch.float16), ((7, 5), torch.float16),
                                                   ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)])
def test_amp_auto_follows_the_compute_capability_of_the_runs_device(monkeypatch, capability, dtype):
    """V100 (7.0) and T4 (7.5) only emulate bf16, which torch.cuda.is_bf16_supported() counts as support."""
    asked = []
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: asked.append(device) or capability)
    precision = resolve_precision(AUTO, torch.device("cuda:1"))
    assert precision.amp_dtype == dtype and precision.use_scaler == (dtype == torch.float16)
    assert asked == [torch.device("cuda:1")]  # the run's device, not the current one
    assert resolve_precision(AUTO, torch.device("cpu")).amp_dtype is None


def test_one_process_on_cuda_n_makes_it_the_current_device(monkeypatch):
    current = []
    monkeypatch.setattr(distributed, "resolve_device", torch.device)
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    assert bind_device("cuda:1", DistInfo()) == torch.device("cuda:1")
    assert bind_device("cuda", DistInfo(rank=3, world_size=4, local_rank=1)) == torch.device("cuda:1")
    assert bind_device("cpu", DistInfo()) == torch.device("cpu")
    assert current == [torch.device("cuda:1")] * 2


class FakeNVMLError(Exception):
    pass


def fake_nvml(bus_ids: list[str]) -> SimpleNamespace:
    """nvidia-ml-py as it behaves on a MIG slice: utilisation is not supported."""

    def utilisation(handle):
        raise FakeNVMLError("Not Supported")

    return SimpleNamespace(
        NVMLError=FakeNVMLError, nvmlInit=lambda: None,
        nvmlDeviceGetHandleByPciBusId=lambda bus_id: bus_ids.append(bus_id) or "handle-by-bus-id",
        nvmlDeviceGetHandleByIndex=lambda index: "handle-of-another-gpu",
        nvmlDeviceGetUtilizationRates=utilisation,
        nvmlDeviceGetMemoryInfo=lambda handle: SimpleNamespace(used=(3 if handle == "handle-by-bus-id" else 9) * 2**20),
    )


def test_gpu_monitor_finds_its_gpu_by_bus_id_survives_mig_and_resets_the_peak(monkeypatch, capsys):
    bus_ids, peaks, resets = [], [100 * 2**20, 40 * 2**20], []
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(bus_ids))
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda device: SimpleNamespace(pci_domain_id=0, pci_bus_id=0x3B, pci_device_id=0))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device: peaks.pop(0))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", resets.append)
    monitor = GpuMonitor(torch.device("cuda:1"))
    first, second = monitor.figures(), monitor.figures()
    assert bus_ids == ["00000000:3b:00.0"]
    assert first == {"gpu_max_allocated_mb": 100.0, "gpu_used_mb": 3.0}  # utilisation left out, not fatal
    assert second == {"gpu_max_allocated_mb": 40.0, "gpu_used_mb": 3.0}  # the peak of its own window
    assert resets == [torch.device("cuda:1")] * 2
    assert capsys.readouterr().out.count("gpu_util_percent is left out") == 1


def test_parameters_without_gradient_find_a_mask_head_no_term_trains():
    generator = GENERATORS.build("u2net_lite", width=4, mid=2)
    buffers = {name: value.clone() for name, value in generator.state_dict().items()}
    rng = torch.get_rng_state()
    unused = parameters_without_gradient(generator, torch.device("cpu"), mask_trained=False)
    assert unused and all(name.startswith(("side_heads.", "mask_fuse.")) for name in unused)
    assert parameters_without_gradient(generator, torch.device("cpu"), mask_trained=True) == []
    assert torch.equal(rng, torch.get_rng_state())  # the dry run changes neither the RNG nor the statistics
    assert generator.training
    for name, value in generator.state_dict().items():
        assert torch.equal(value, buffers[name]), name


def test_mask_terms_must_be_in_every_stage(tmp_path):
    options = tiny_options(tmp_path)  # quick-start: edit_map trains the edit map
    assert mask_trained_in_every_stage(options)
    options["stages"] = [{"name": "a", "steps": 1}, {"name": "b", "steps": 1, "losses": {"l1": {}}}]
    assert not mask_trained_in_every_stage(options)


def test_resuming_with_fp16_from_a_checkpoint_saved_without_it_starts_a_fresh_scaler(tmp_path):
    """A bf16 or CPU checkpoint holds empty GradScaler states, which an enabled scaler refused to load."""
    trainer = build_training(tiny_options(tmp_path, "train.amp=bf16", "train.steps=1", "val.every=0"))
    trainer.fit()
    state = load_checkpoint(trainer.run_dir / "latest.pt")
    assert state["scalers"] == {"g": {}, "d": {}}
    options = tiny_options(tmp_path / "fp16", "train.steps=2")
    model = RetouchModel(options, torch.device("cpu"), DistInfo(), Precision(torch.float16, True, False, False))
    model.start_stage(plan_stages(options)[0])
    model.load_state_dict(state)
    for scaler in (model.optimization.scaler_g, model.optimization.scaler_d):
        assert scaler.is_enabled() and scaler.get_scale() == 2.0**16
    assert model.optimization.optimizer_g.state_dict()["state"]  # the rest of the state was loaded


def test_a_one_process_torchrun_run_joins_a_process_group(monkeypatch):
    """So that DDP and NCCL run on a single GPU as they do on many (benchmarks/gpu_check.py's torchrun row)."""
    joined = []
    for key, value in {"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda backend: joined.append(backend))
    info = distributed.init_distributed("cpu")
    assert info.enabled and info.world_size == 1 and joined == ["gloo"]
    monkeypatch.delenv("MASTER_ADDR")  # WORLD_SIZE=1 alone is no launcher
    assert not distributed.init_distributed("cpu").enabled and joined == ["gloo"]
