"""Shared test settings: small thread pools (CI has 2 cores), a fixed seed per test, and no network."""

import pytest
import torch
import torch.hub

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch) -> None:
    """Tests run as an offline cluster would (subprocesses inherit the variable); torch.hub may not connect."""
    monkeypatch.setenv("GAN_RETOUCH_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise AssertionError("tests never touch the network (torch.hub.urlopen was called)")

    monkeypatch.setattr(torch.hub, "urlopen", refuse)
