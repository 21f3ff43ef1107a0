"""The generator EMA (``train.ema``): the same averages as torch's AveragedModel, without a host-device sync."""

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.overrides import TorchFunctionMode

import gan_retouch.nets  # noqa: F401  (registers the generators)
from gan_retouch.engine.ema import GeneratorEMA
from gan_retouch.registry import GENERATORS

HOST_READS = {"to", "cpu", "item", "tolist", "__bool__", "__int__", "__float__", "__index__"}


class Recording(TorchFunctionMode):
    """Records every tensor method that moves a tensor between devices or reads a value into Python (on a GPU, a
    wait for the CUDA stream)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", str(func))
        if name in HOST_READS:
            self.calls.append(name)
        return func(*args, **(kwargs or {}))


def generator() -> torch.nn.Module:
    torch.manual_seed(0)
    return GENERATORS.build("autoretouch", ngf=4, n_blocks=1)  # BatchNorm: float and int64 buffers


def step(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter))
        for buffer in model.buffers():
            buffer.add_(1)


def test_it_averages_as_averaged_model_does_and_saves_the_same_state():
    model = generator()
    ours, theirs = GeneratorEMA(model, 0.9), AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9),
                                                           use_buffers=True)
    for _ in range(4):
        step(model)
        ours.update_parameters(model)
        theirs.update_parameters(model)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    for key, value in theirs.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value)
    again = GeneratorEMA(generator(), 0.9)
    again.load_state_dict(theirs.state_dict())
    assert again.updates == 4


def test_an_update_reads_nothing_back_from_the_device():
    model = generator()
    ema = GeneratorEMA(model, 0.9)
    with Recording() as recording:
        for _ in range(3):
            step(model)
            ema.update_parameters(model)
    assert recording.calls == []
    stock = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
    with Recording() as recording:  # the check can fail: torch's own reads its counter and moves it every step
        for _ in range(2):
            stock.update_parameters(model)
    assert "to" in recording.calls and "__bool__" in recording.calls
