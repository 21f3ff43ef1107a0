"""``retouch.precision: auto``: fp16 on CUDA only when the model's fp16 output matches its fp32 output."""

import torch

import gan_retouch.nets  # noqa: F401  (registers the generators)
from gan_retouch.deploy.half import FP16_TOLERANCE, auto_precision, fp16_difference
from gan_retouch.inference.plan import InferencePlan
from gan_retouch.registry import GENERATORS


def student() -> torch.nn.Module:
    torch.manual_seed(0)
    network = GENERATORS.build("student_fast", width=8, blocks=1, context=1, detail=8, detail_blocks=0)
    with torch.no_grad():  # off its identity start
        for parameter in network.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return network.eval()


def test_off_cuda_it_is_fp32_without_a_probe():
    def measure(*args):
        raise AssertionError("no probe off CUDA")

    plan, note = auto_precision(student(), InferencePlan(), torch.device("cpu"), measure)
    assert plan.precision == "fp32" and note == ""


def test_on_cuda_fp16_only_within_the_tolerance():
    cuda = torch.device("cuda")  # the probe is replaced: nothing runs on a GPU here
    plan, note = auto_precision(student(), InferencePlan(), cuda, lambda *args: 1e-3)
    assert plan.precision == "fp16" and "fp16 (its output within 1.0e-03 of fp32" in note
    plan, note = auto_precision(student(), InferencePlan(), cuda, lambda *args: 0.05)
    assert plan.precision == "fp32" and "moves by 5.0e-02" in note
    plan, note = auto_precision(student(), InferencePlan(backend="onnxruntime"), cuda, lambda *args: 0.0)
    assert plan.precision == "fp32" and "onnxruntime" in note


def test_the_probe_measures_the_fp16_error_of_the_model_itself():
    difference = fp16_difference(student(), torch.device("cpu"), None)  # fp16 convolutions run on the CPU too
    assert 0 < difference < FP16_TOLERANCE
