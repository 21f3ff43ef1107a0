"""The retouch pipeline: decode ahead and encode behind on threads, uint8 in and out of the device."""

import threading
import time

import pytest
import torch

from gan_retouch.deploy.pipeline import Decoded, download, run_overlapped, upload
from gan_retouch.imaging import to_uint8


def test_upload_sends_the_decoded_integers_and_gives_the_float_image():
    pixels = [torch.randint(0, 256, (3, 5, 7), dtype=torch.uint8) for _ in range(2)]
    images = upload(pixels, torch.device("cpu"))
    assert images.dtype == torch.float32 and images.shape == (2, 3, 5, 7)
    torch.testing.assert_close(images, torch.stack(pixels).float() / 255, rtol=0, atol=0)
    deep = [torch.randint(0, 65536, (3, 4, 4), dtype=torch.int32).to(torch.uint16)]
    torch.testing.assert_close(upload(deep, torch.device("cpu"))[0], deep[0].to(torch.float32) / 65535, rtol=0, atol=0)


def test_download_rounds_8_bit_outputs_as_the_encoders_do_and_keeps_16_bit_ones_float():
    outputs = torch.rand(2, 3, 4, 4) * 1.2 - 0.1
    eight = download(outputs, [8, 8])
    assert all(out.dtype == torch.uint8 for out in eight)
    assert torch.equal(torch.stack(eight), to_uint8(outputs))
    mixed = download(outputs, [8, 16])
    assert all(out.dtype == torch.float32 for out in mixed)


def test_the_next_batch_decodes_and_the_last_one_encodes_while_a_batch_computes():
    events = []
    lock = threading.Lock()

    def log(what):
        with lock:
            events.append(what)

    def decode(job):
        log(f"decode {job}")
        return Decoded(job, torch.zeros(1), {})

    def compute(decoded):
        jobs = [item.job for item in decoded]
        log(f"compute start {jobs}")
        time.sleep(0.3)  # the decode of the next batch and the store of the last one happen meanwhile
        log(f"compute end {jobs}")
        return [torch.zeros(1) for _ in decoded]

    def store(item, output):
        time.sleep(0.05)
        log(f"store {item.job}")

    done = []
    run_overlapped([[0, 1], [2, 3], [4]], decode, compute, store, done.append)
    assert done == [2, 2, 1]
    assert events.index("decode 2") < events.index("compute end [0, 1]")
    assert events.index("store 0") < events.index("compute end [2, 3]")
    assert sorted(e for e in events if e.startswith("store")) == [f"store {i}" for i in range(5)]


def test_a_failed_decode_is_left_out_and_a_failed_store_is_raised():
    stored = []

    def decode(job):
        return None if job == 1 else Decoded(job, torch.zeros(1), {})

    def compute(decoded):
        return [torch.zeros(1) for _ in decoded]

    run_overlapped([[0, 1], [2]], decode, compute, lambda item, _: stored.append(item.job), lambda n: None)
    assert sorted(stored) == [0, 2]

    def broken(item, output):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        run_overlapped([[0], [1]], decode, compute, broken, lambda n: None)
