"""Data throughput and difficulty: synthetic pairs/s, folder loading pairs/s, identity-baseline statistics.

Run: python benchmarks/bench_data.py [--quick]. Prints figures; asserts nothing (speed is measured, not tested).
The quick start needs >= 60 synthetic pairs/s at 128 px so that generation is not its bottleneck.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch

from gan_retouch.config import option_defaults
from gan_retouch.data import build_dataset, build_loader, synthesize_pair
from gan_retouch.data.synthetic import changed_share
from gan_retouch.imaging import save_image


def synthetic_rate(size: int, count: int, **family: object) -> float:
    synthesize_pair(0, size, **family)  # warm-up
    start = time.perf_counter()
    for index in range(count):
        synthesize_pair(index, size, **family)
    return count / (time.perf_counter() - start)


def identity_stats(**family: object) -> tuple[float, float, int]:
    """Mean identity PSNR (RGB, MAX=1; pairs with nothing to fix left out) and mean share of pixels changed by
    more than 8/255, on the default synthetic validation set (256 px) with the given family settings."""
    data = option_defaults("common")["data"]
    data = {**data, "val_count": None, "synthetic": {**data["synthetic"], **family}}
    dataset = build_dataset(data, "val")
    scores, shares = [], []
    for index in range(len(dataset)):
        item = dataset[index]
        mse = float((item["input"] - item["target"]).square().mean())
        if mse > 0:
            scores.append(10 * math.log10(1.0 / mse))
            shares.append(changed_share(item["input"], item["target"]))
    return sum(scores) / len(scores), 100 * sum(shares) / len(shares), len(scores)


def folder_rate(root: Path, workers: int, batches: int, cache: bool) -> float:
    """Pairs/s of a loader over the folder: decoding every item (no cache), or from the in-memory cache."""
    data = {**option_defaults("common")["data"], "source": "folder", "root": str(root), "num_workers": workers,
            "cache": cache}
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
    runs = ((128, 24 if args.quick else 96, "standard"), (128, 24 if args.quick else 96, "subtle"),
            (256, 8 if args.quick else 32, "standard"), (1024, 2 if args.quick else 6, "standard"))
    for size, count, mode in runs:
        print(f"synthetic pairs/s at {size}x{size} ({mode}): {synthetic_rate(size, count, mode=mode):.2f}")
    for mode in ("standard", "subtle"):
        psnr, share, count = identity_stats(mode=mode)
        print(f"identity baseline (output = input), default synthetic val set, {mode} mode ({count} pairs with "
              f"defects, 256 px): {psnr:.2f} dB PSNR, {share:.2f} % of pixels changed by > 8/255")
    pairs = 8 if args.quick else 16
    with tempfile.TemporaryDirectory() as folder:
        for extension in ("png", "jpg"):
            root = Path(folder) / extension
            for index in range(pairs):
                pair = synthesize_pair(index, 1024)
                save_image(pair["input"], root / "train" / "source" / f"{index:03d}.{extension}")
                save_image(pair["target"], root / "train" / "target" / f"{index:03d}.{extension}")
            for workers in (0, 2, 4):
                for cache in (False, True):
                    rate = folder_rate(root, workers, pairs // 2 - 1, cache)
                    print(f"folder loading, 1024x1024 {extension.upper()} pairs, {workers} workers, "
                          f"cache {'on' if cache else 'off'}: {rate:.1f} pairs/s")


if __name__ == "__main__":
    main()
