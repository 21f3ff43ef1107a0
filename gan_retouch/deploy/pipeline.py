"""The retouch loop with its host work overlapped with the network: decode ahead, upload uint8, encode behind.

On a GPU the student takes about a millisecond per 1024 px image in fp16, so the host work around it is the
whole cost. Here:

- a small thread pool decodes the next batch while the current one computes, and encodes and writes the
  previous batch's outputs (the JPEG/PNG decoders, Pillow's encoders and zlib release the GIL);
- images go to the device as their decoded uint8 pixels (16-bit PNGs as uint16), a quarter of the bytes of
  float32, from pinned memory on CUDA (an asynchronous copy), and become float on the device;
- outputs are rounded to uint8 on the device, exactly as the encoders round them (``imaging.to_uint8``), and
  come back in one copy (16-bit outputs come back as float, to keep their 16 bits).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import torch

from gan_retouch.imaging import to_uint8

J = TypeVar("J")
WORKERS = 3  # decode one batch ahead and encode one behind on a 2-core machine; more only queue


@dataclass
class Decoded(Generic[J]):
    """One decoded image: its job, its pixels (uint8 or uint16 ``[3,H,W]``, upright) and its info (bits, ICC
    profile, EXIF, alpha), as ``image_files.read_pixels`` returns them."""

    job: J
    pixels: torch.Tensor
    info: dict[str, Any]


def upload(images: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    """``[N,3,H,W]`` float in [0, 1] on ``device`` from decoded uint8/uint16 ``[3,H,W]`` pixels: stacked once
    (into pinned memory on CUDA), copied as integers, converted on the device."""
    first = images[0]
    pinned = device.type == "cuda"
    batch = torch.empty((len(images), *first.shape), dtype=first.dtype, pin_memory=pinned)
    torch.stack(images, out=batch)
    on_device = batch.to(device, non_blocking=pinned)
    scale = 65535.0 if first.dtype == torch.uint16 else 255.0
    return on_device.to(torch.float32).div_(scale)


def download(outputs: torch.Tensor, bits: list[int]) -> list[torch.Tensor]:
    """The outputs ``[N,3,H,W]`` in [0, 1] on the host, in one copy: uint8 (rounded on the device) for 8-bit
    files, float32 for 16-bit ones."""
    if all(b == 8 for b in bits):
        return list(to_uint8(outputs).cpu())
    return list(outputs.float().cpu())


def run_overlapped(batches: Iterable[list[J]], decode: Callable[[J], Decoded[J] | None],
                   compute: Callable[[list[Decoded[J]]], list[torch.Tensor]],
                   store: Callable[[Decoded[J], torch.Tensor], None], done: Callable[[int], None],
                   workers: int = WORKERS) -> None:
    """For each batch of jobs: ``decode`` them (None: failed, already reported), ``compute`` the outputs of the
    decoded ones on the calling thread, ``store`` each output, and report ``done(len(batch))``. Decoding of
    batch i+1 and storing of batch i-1 run on ``workers`` threads while batch i computes; every store has ended
    when this returns, and an exception in one is raised here."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="retouch-io") as pool:
        pending: list[Future] = []
        ahead = _decoded_ahead(iter(batches), decode, pool)
        for jobs, decoded in ahead:
            if decoded:
                outputs = compute(decoded)
                pending += [pool.submit(store, item, output) for item, output in zip(decoded, outputs, strict=True)]
            pending = _finish_done(pending, 4 * workers)
            done(len(jobs))
        for future in pending:
            future.result()


def _decoded_ahead(batches: Iterator[list[J]], decode: Callable[[J], Decoded[J] | None],
                   pool: ThreadPoolExecutor) -> Iterator[tuple[list[J], list[Decoded[J]]]]:
    """Each batch with its decoded images; the next batch is submitted before this one is handed out."""
    def submit() -> tuple[list[J], list[Future]] | None:
        jobs = next(batches, None)
        return None if jobs is None else (jobs, [pool.submit(decode, job) for job in jobs])

    current = submit()
    while current is not None:
        following = submit()
        jobs, futures = current
        yield jobs, [item for item in (future.result() for future in futures) if item is not None]
        current = following


def _finish_done(pending: list[Future], limit: int) -> list[Future]:
    """The futures still running, at most ``limit`` (the oldest are waited for: outputs waiting to be written
    hold memory); finished ones are collected, re-raising their exception."""
    running = []
    for future in pending:
        if future.done():
            future.result()
        else:
            running.append(future)
    while len(running) > limit:
        running.pop(0).result()
    return running
