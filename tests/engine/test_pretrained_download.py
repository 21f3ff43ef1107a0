"""Pretrained weights downloaded on first use, with the network faked at torch.hub's urlopen.

torch.hub's own download code runs (temp file, sha256 check, move into place); only the server is local. Each
fake release names its file like torchvision does, NAME-<sha256 prefix>.pth, so the real hash check applies.
"""

import email.message
import hashlib
import io
import os
import socket
import time
import urllib.error
import urllib.response
from types import SimpleNamespace

import pytest
import torch
import torch.hub
from engine_utils import tiny_options
from torch import nn
from torchvision import models

from gan_retouch.engine.backbones import fetch_run_backbones
from gan_retouch.engine.distributed import DistInfo
from gan_retouch.errors import ConfigError
from gan_retouch.evaluate.validation import resolve_lpips
from gan_retouch.losses.pretrained import (
    DOWNLOAD_TIMEOUT_S,
    TORCHVISION_WEIGHTS,
    build_lpips,
    fetch_weights,
    weights_file,
)
from gan_retouch.train import build_training

CHUNK = 128 * 1024  # torch.hub reads this much at a time


class FakeServer:
    """Serves fake torchvision releases; records every request; can fail in the ways a real download fails."""

    def __init__(self, monkeypatch) -> None:
        self.monkeypatch = monkeypatch
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        self.failure: BaseException | None = None  # raised by the second read (after one chunk was written)
        self.refusal: BaseException | None = None  # raised instead of connecting
        monkeypatch.setattr(torch.hub, "urlopen", self.urlopen)

    def release(self, arch: str, payload: bytes, served: bytes | None = None) -> str:
        """Publish ``payload`` as ``arch``'s ImageNet weights (``served`` = other bytes behind the same name)."""
        name = f"{arch}-fake-{hashlib.sha256(payload).hexdigest()[:8]}.pth"
        url = f"https://download.example/models/{name}"
        self.monkeypatch.setitem(TORCHVISION_WEIGHTS, arch, SimpleNamespace(url=url, meta={"_file_size": 1.0}))
        self.files[url] = payload if served is None else served
        return name

    def urlopen(self, request):
        self.requests.append(request.full_url)
        assert socket.getdefaulttimeout() == DOWNLOAD_TIMEOUT_S  # a stalled connection cannot hang the run
        if self.refusal is not None:
            raise self.refusal
        data = self.files[request.full_url]
        headers = email.message.Message()
        headers["Content-Length"] = str(len(data))
        body = io.BytesIO(data) if self.failure is None else FailingBody(data, self.failure)
        return urllib.response.addinfourl(body, headers, request.full_url, 200)


class FailingBody(io.BytesIO):
    def __init__(self, data: bytes, failure: BaseException) -> None:
        super().__init__(data)
        self.failure = failure
        self.reads = 0

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        if self.reads > 1:
            raise self.failure
        return super().read(size)


@pytest.fixture()
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GAN_RETOUCH_OFFLINE")  # conftest's default: here downloads are allowed, to the fake
    return FakeServer(monkeypatch)


def cache_listing(tmp_path) -> list[str]:
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def alexnet_features_file() -> tuple[bytes, nn.Sequential]:
    """A small stand-in for alexnet-owt-7be5be79.pth: random ``features.*`` tensors of the right shapes."""
    with torch.device("meta"):
        features = models.alexnet(weights=None).features
    features = features.to_empty(device="cpu")
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            layer.reset_parameters()
    buffer = io.BytesIO()
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, buffer)
    return buffer.getvalue(), features


def test_first_use_downloads_into_the_torch_cache_and_the_second_reads_it(server, tmp_path, capsys) -> None:
    payload = os.urandom(3 * CHUNK)
    name = server.release("vgg19", payload)
    path = fetch_weights("vgg19")
    assert path == tmp_path / "torch" / "hub" / "checkpoints" / name == weights_file("vgg19")
    assert path.read_bytes() == payload and cache_listing(tmp_path) == [name]
    out = capsys.readouterr()
    assert f"downloading the ImageNet weights of vgg19: {name} (1 MiB)" in " ".join(out.out.split())
    assert "%" in out.err  # torch.hub's progress bar
    assert fetch_weights("vgg19") == path
    assert len(server.requests) == 1
    assert socket.getdefaulttimeout() is None  # the download's timeout does not outlive it


@pytest.mark.parametrize("failure", [ConnectionResetError(104, "Connection reset by peer"),
                                     urllib.error.URLError("proxy refused the tunnel")])
def test_a_download_that_fails_midway_leaves_nothing_in_the_cache(server, tmp_path, failure) -> None:
    name = server.release("vgg19", os.urandom(3 * CHUNK))
    server.failure = failure
    with pytest.raises(ConfigError) as error:
        fetch_weights("vgg19")
    message = str(error.value)
    assert message.startswith(f"could not download the pretrained ImageNet weights of vgg19 ({name}) into "
                              f"{tmp_path / 'torch' / 'hub' / 'checkpoints'}: ")
    assert "nothing was kept" in message and "GAN_RETOUCH_OFFLINE=1" in message and "\n" not in message
    assert cache_listing(tmp_path) == []


def test_ctrl_c_during_a_download_leaves_nothing_in_the_cache(server, tmp_path) -> None:
    server.release("alexnet", os.urandom(3 * CHUNK))
    server.failure = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):  # not turned into an error message: the CLI reports it as interrupted
        fetch_weights("alexnet")
    assert cache_listing(tmp_path) == []


def test_no_network_is_one_clear_line(server, tmp_path) -> None:
    name = server.release("alexnet", b"weights")
    server.refusal = urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))
    with pytest.raises(ConfigError, match=f"of alexnet \\({name}\\) into .*Temporary failure in name resolution"):
        fetch_weights("alexnet")
    assert cache_listing(tmp_path) == []


def test_a_file_whose_hash_does_not_match_its_name_is_refused(server, tmp_path) -> None:
    server.release("vgg16", b"the released weights", served=b"something else, e.g. a proxy's error page")
    with pytest.raises(ConfigError, match="could not download .* invalid hash value"):
        fetch_weights("vgg16")
    assert cache_listing(tmp_path) == []


@pytest.mark.parametrize("switch", ["option", "environment"])
def test_offline_mode_never_calls_the_network(server, tmp_path, monkeypatch, switch) -> None:
    name = server.release("vgg19", b"weights")
    if switch == "environment":
        monkeypatch.setenv("GAN_RETOUCH_OFFLINE", "1")
    with pytest.raises(ConfigError, match=f"{name} is missing from .* downloading is off"):
        fetch_weights("vgg19", offline=switch == "option")
    assert server.requests == [] and cache_listing(tmp_path) == []


def test_partial_files_of_killed_downloads_are_removed_and_live_ones_kept(server, tmp_path) -> None:
    name = server.release("vgg19", b"weights")
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    dead, live = folder / f"{name}.0123abcd.partial", folder / f"{name}.4567ef01.partial"
    dead.write_bytes(b"half")
    live.write_bytes(b"half")
    two_hours_ago = time.time() - 7200
    os.utime(dead, (two_hours_ago, two_hours_ago))
    fetch_weights("vgg19")
    assert cache_listing(tmp_path) == sorted([name, live.name])


def test_lpips_is_built_from_the_downloaded_file(server) -> None:
    payload, features = alexnet_features_file()
    server.release("alexnet", payload)
    distance = build_lpips("alex")
    assert torch.equal(distance.model.net.slice1[0].weight, features[0].weight)
    assert len(server.requests) == 1


def test_lpips_metric_auto_never_downloads_and_true_downloads_unless_offline(server, tmp_path) -> None:
    payload, _ = alexnet_features_file()
    name = server.release("alexnet", payload)
    model, note = resolve_lpips("auto", "test.lpips", offline=False)
    assert model is None and server.requests == []
    assert f"LPIPS not computed: {name} (the ImageNet weights of alexnet, 1 MiB, from " in note
    assert "(test.lpips: auto never downloads; test.lpips: true downloads it once)" in note
    with pytest.raises(ConfigError, match="test.lpips is true, but LPIPS cannot run: .*downloading is off"):
        resolve_lpips(True, "test.lpips", offline=True)
    assert server.requests == []
    model, note = resolve_lpips(True, "test.lpips", offline=False)
    assert model is not None and note is None and len(server.requests) == 1
    model, note = resolve_lpips("auto", "test.lpips", offline=True)  # now in the cache: auto uses it
    assert model is not None and len(server.requests) == 1


def test_a_run_downloads_its_weights_once_before_step_1(server, tmp_path) -> None:
    payload, _ = alexnet_features_file()
    server.release("alexnet", payload)
    options = tiny_options(tmp_path, "train.steps=1", "val.lpips=true",
                           extra={"losses": {"lpips": {"weight": 1.0, "net": "alex"}}})
    trainer = build_training(options)
    assert len(server.requests) == 1  # the loss term and the validation metric share the file
    assert "lpips" in trainer.validation.names
    metrics = trainer.fit()
    assert metrics["lpips"] >= 0 and len(server.requests) == 1


@pytest.mark.parametrize("setting", ["losses.vgg={weight: 1.0}", "val.lpips=true",
                                     "losses.vgg={weight: 1.0, weights: /nowhere/vgg19.pth}"])
def test_a_run_without_its_weights_stops_before_the_run_folder(server, tmp_path, setting) -> None:
    server.refusal = urllib.error.URLError("no route to host")
    with pytest.raises(ConfigError, match="could not download|does not exist"):
        build_training(tiny_options(tmp_path, setting, "name=run"))
    assert not (tmp_path / "run").exists()


def test_a_stage_that_adds_a_perceptual_term_is_fetched_before_step_1(server, tmp_path) -> None:
    stages = [{"name": "first", "steps": 1, "losses": {"l1": {}}},
              {"name": "second", "steps": 1, "losses": {"l1": {}, "vgg": {"weight": 1.0}}}]
    with pytest.raises(ConfigError, match="vgg19-dcbb9e9d.pth is missing from .*downloading is off"):
        build_training(tiny_options(tmp_path, "pretrained.offline=true", "name=run", extra={"stages": stages}))
    assert server.requests == [] and not (tmp_path / "run").exists()


def test_under_torchrun_the_first_process_of_each_machine_downloads_and_the_others_wait(server, tmp_path,
                                                                                       monkeypatch) -> None:
    server.release("vgg19", os.urandom(CHUNK))
    downloads_at_barrier = []
    monkeypatch.setattr(torch.distributed, "barrier", lambda: downloads_at_barrier.append(len(server.requests)))
    options = tiny_options(tmp_path, extra={"losses": {"vgg": {"weight": 1.0}}})
    fetch_run_backbones(options, DistInfo(rank=1, world_size=4, local_rank=1))
    assert downloads_at_barrier == [0]  # waits without fetching (rank 0 of its machine does)
    fetch_run_backbones(options, DistInfo(rank=2, world_size=4, local_rank=0))  # first process of a second machine
    assert downloads_at_barrier == [0, 1]  # downloaded, then released the others


def test_validation_lpips_auto_does_not_download(server, tmp_path) -> None:
    payload, _ = alexnet_features_file()
    server.release("alexnet", payload)
    trainer = build_training(tiny_options(tmp_path, "val.lpips=auto"))
    assert "lpips" not in trainer.validation.names and server.requests == []
