"""Shared test settings: small thread pools (CI has 2 cores), a fixed seed per test, no network, and a private
user cache (the backend choices `retouch` remembers go under XDG_CACHE_HOME, never into the real ~/.cache), and
benchmark records written to a temporary folder, never into benchmarks/results/."""

import os

import pytest
import torch
import torch.hub

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["GAN_RETOUCH_RESULTS_DIR"] = str(tmp_path_factory.mktemp("benchmark_records"))


@pytest.fixture(autouse=True)
def _no_network(monkeypatch) -> None:
    """Tests run as an offline cluster would (subprocesses inherit the variable); torch.hub may not connect."""
    monkeypatch.setenv("GAN_RETOUCH_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise AssertionError("tests never touch the network (torch.hub.urlopen was called)")

    monkeypatch.setattr(torch.hub, "urlopen", refuse)
