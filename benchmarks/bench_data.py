"""Data throughput and difficulty: synthetic pairs/s, folder loading pairs/s, identity-baseline PSNR.

Run: python benchmarks/bench_data.py [--quick]. Prints figures; asserts nothing (speed is measured, not tested).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from gan_retouch.config import option_defaults
from gan_retouch.data import build_dataset, build_loader, synthesize_pair
from gan_retouch.imaging import save_image


def synthetic_rate(size: int, count: int) -> float:
    start = time.perf_counter()
    for index in range(count):
        synthesize_pair(index, size)
    return count / (time.perf_counter() - start)


def identity_psnr() -> tuple[float, int]:
    """Mean PSNR (RGB, MAX=1) of output = input on the default synthetic validation set."""
    data = option_defaults("common")["data"]
    dataset = build_dataset({**data, "val_count": None}, "val")
    scores = []
    for index in range(len(dataset)):
        item = dataset[index]
        mse = (item["input"] - item["target"]).square().mean().clamp_min(1e-12)
        scores.append(float(10 * torch.log10(1.0 / mse)))
    return sum(scores) / len(scores), len(scores)


def folder_rate(root: Path, workers: int, batches: int) -> float:
    data = {**option_defaults("common")["data"], "source": "folder", "root": str(root), "num_workers": workers}
    loader = build_loader(build_dataset(data, "train"), data, batch_size=2, shuffle=False)
    iterator = iter(loader)
    next(iterator)  # start-up (worker launch) is not throughput
    start = time.perf_counter()
    seen = 0
    for _ in range(batches):
        try:
            seen += len(next(iterator)["name"])
        except StopIteration:
            break
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch threads: {torch.get_num_threads()}")
    for size, count in ((256, 8 if args.quick else 32), (1024, 2 if args.quick else 6)):
        print(f"synthetic pairs/s at {size}x{size}: {synthetic_rate(size, count):.2f}")
    psnr, count = identity_psnr()
    print(f"identity baseline (output = input) on the default synthetic val set ({count} pairs, 256 px): "
          f"{psnr:.2f} dB PSNR")
    pairs = 8 if args.quick else 16
    with tempfile.TemporaryDirectory() as folder:
        for extension in ("png", "jpg"):
            root = Path(folder) / extension
            for index in range(pairs):
                pair = synthesize_pair(index, 1024)
                save_image(pair["input"], root / "train" / "source" / f"{index:03d}.{extension}")
                save_image(pair["target"], root / "train" / "target" / f"{index:03d}.{extension}")
            for workers in (0, 2, 4):
                rate = folder_rate(root, workers, pairs // 2 - 1)
                print(f"folder loading, 1024x1024 {extension.upper()} pairs, {workers} workers: {rate:.1f} pairs/s")


if __name__ == "__main__":
    main()
