"""Timing an inference plan for `gan-retouch bench`: plain calls, or a replayed CUDA graph; throughput on CUDA.

A CUDA graph replays the kernels of one captured call on the memory it was captured with, so the captured
input and output stay referenced by the replaying closure for as long as it lives (a freed input would be
read after reuse). Running out of GPU memory while capturing, or at a throughput batch size, is reported, not
raised as a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from gan_retouch.deploy.backends import Backend
from gan_retouch.errors import ConfigError
from gan_retouch.inference.plan import InferencePlan
from gan_retouch.inference.profile import measure_latency, stand_in_mask
from gan_retouch.inference.run import apply_plan, reference_network, run_plan, tile_for
from gan_retouch.nets.base import run_generator


class GraphOutOfMemory(ConfigError):
    """Capturing a CUDA graph ran out of GPU memory."""


def graph_replay(backend: Backend, plan: InferencePlan, x: torch.Tensor,
                 mask: torch.Tensor | None) -> Callable[[], torch.Tensor]:
    """A no-argument callable replaying the CUDA graph of one ``plan`` run on ``x`` (torch backend)."""
    network = backend.network
    memory_format = torch.channels_last if backend.channels_last else torch.contiguous_format
    stride = int(getattr(reference_network(backend), "stride", 1))

    def call(images: torch.Tensor, m: torch.Tensor | None, floor: float) -> torch.Tensor:
        images = images.to(backend.dtype).contiguous(memory_format=memory_format)
        return run_generator(network, images, m, floor)[0].float()

    def run() -> torch.Tensor:
        return apply_plan(plan, call, x, mask, plan.tile or 0, stride)

    try:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):  # warm up on a side stream before capture, as the CUDA graph docs require
                run()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            output = run()
    except torch.OutOfMemoryError as exc:
        torch.cuda.empty_cache()
        raise GraphOutOfMemory(f"bench ran out of GPU memory capturing a CUDA graph of a {tuple(x.shape)} input; lower "
                          "--size or bench.batch_size, or set bench.cuda_graph=false") from exc

    def replay() -> torch.Tensor:
        graph.replay()
        return output  # x, mask and output stay alive with this closure: the graph reads and writes them

    return replay


def time_plan(backend: Backend, plan: InferencePlan, bench: dict[str, Any], device: torch.device, batch: int,
              height: int, width: int, min_time_s: float) -> dict[str, float]:
    """Latency (ms) of ``plan`` (its tile decided) through ``backend`` on a random ``batch`` x 3 x ``height`` x
    ``width`` image: what `retouch` does per batch, without reading and writing files (out of memory is raised
    here, where `retouch` would fall back to smaller tiles)."""
    x = torch.rand(batch, 3, height, width, device=device)
    mask = stand_in_mask(x, backend.takes_mask)
    with torch.inference_mode(not bench["cuda_graph"]), torch.no_grad():
        run = graph_replay(backend, plan, x, mask) if bench["cuda_graph"] else (lambda: run_plan(plan, backend, x, mask, fallback=False))
        return measure_latency(run, min_time_s, bench["warmup"])


def measure_throughput(backend: Backend, plan: InferencePlan, bench: dict[str, Any],
                       device: torch.device) -> dict[str, Any]:
    """Images/s for each of ``bench.throughput_batches`` until one runs out of GPU memory, and the best."""
    per_batch: dict[str, float] = {}
    skipped: list[int] = []
    size = bench["size"]
    for batch in bench["throughput_batches"]:
        sized = replace(plan, tile=tile_for(plan, backend, size, size, batch, device))
        try:
            median = time_plan(backend, sized, bench, device, batch, size, size, bench["min_time_s"] / 4)["median"]
        except (torch.OutOfMemoryError, GraphOutOfMemory):
            skipped.append(batch)
            torch.cuda.empty_cache()
            break
        per_batch[str(batch)] = batch / (median / 1000.0)
    if not per_batch:
        raise ConfigError(f"bench ran out of GPU memory even at batch {bench['throughput_batches'][0]} and size "
                          f"{size}; lower --size or bench.throughput_batches")
    return throughput_summary(per_batch, skipped)


def throughput_summary(per_batch: dict[str, float], out_of_memory_at: list[int]) -> dict[str, Any]:
    """The best images/s over the batch sizes tried."""
    best = max(per_batch, key=per_batch.get)
    return {"images_per_s": per_batch[best], "best_batch": int(best), "per_batch": per_batch,
            "out_of_memory_at": out_of_memory_at}
