"""Data throughput and difficulty: synthetic pairs/s, folder loading pairs/s, identity-baseline statistics; and
the alignment check's figures on good and damaged pairs.

Run: python benchmarks/bench_data.py [--quick] [--no-record]. Prints figures and records them in
benchmarks/results/bench_data.json (docs/results.md); asserts nothing (speed is measured, not tested).
``--alignment [DIR ...]`` instead runs the pre-check's alignment check on the pairs of each DIR (source/ +
target/) and on synthetic pairs at 256 and 1024 px, each as it is and damaged: target shifted by 8 or 3 px,
cropped by 3 % or 1 % of each side and resized back, or another pair's target; it counts the flagged pairs.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gan_retouch.config import option_defaults
from gan_retouch.data import build_dataset, build_loader
from gan_retouch.data.alignment import check_alignment
from gan_retouch.data.pixels import read_pixels
from gan_retouch.imaging import save_image
from gan_retouch.synth import synthesize_pair
from gan_retouch.synth.synthetic import changed_share

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results.py, also when loaded by file path
from results import record, table  # noqa: E402


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


def _damaged(target: torch.Tensor) -> dict[str, torch.Tensor]:
    """The ways an exported target goes wrong: moved, or cropped and resized back to the input's size."""
    height, width = target.shape[-2:]
    versions = {f"shift {n} px": torch.cat([target[..., :n], target[..., :-n]], dim=-1) for n in (8, 3)}
    for share in (0.03, 0.01):
        cut = round(share * min(height, width))
        inner = target[:, cut : height - cut, cut : width - cut].float()[None]
        resized = F.interpolate(inner, size=(height, width), mode="bilinear", antialias=True)[0]
        versions[f"crop+resize {share:.0%}"] = resized.round().clamp(0, 255).to(target.dtype)
    return versions


def alignment_rows(folders: list[Path], synthetic: int) -> list[list[str]]:
    """How many pairs the alignment check flags, per set and damage, with the SSIM range and ms per pair."""
    table_rows = []
    sets: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    for folder in folders:
        names = sorted(p.name for p in (folder / "source").iterdir())
        sets[f"real {folder.name}"] = [(read_pixels(folder / "source" / n), read_pixels(folder / "target" / n))
                                       for n in names]
    to_pixels = lambda image: (image.clamp(0, 1) * 255).round().to(torch.uint8)  # noqa: E731
    for size in (256, 1024):
        for mode in ("standard", "subtle"):
            pairs = [synthesize_pair(i, size, split="val", mode=mode) for i in range(synthetic)]
            sets[f"synthetic {size} px {mode}"] = [(to_pixels(p["input"]), to_pixels(p["target"])) for p in pairs]
    for label, pairs in sets.items():
        rows: dict[str, list] = {"good": [], "another photo": []}
        for index, (source, target) in enumerate(pairs):
            cases = {"good": target, **_damaged(target)}
            other = pairs[index - 1][1]
            if index > 0 and other.shape == target.shape:
                cases["another photo"] = other
            for case, candidate in cases.items():
                started = time.perf_counter()
                result = check_alignment(source, candidate)
                rows.setdefault(case, []).append((result, time.perf_counter() - started))
        for case, results in rows.items():
            if results:
                ssim = [r.ssim for r, _ in results]
                row = [label, case, f"{sum(not r.aligned for r, _ in results)}/{len(results)}",
                       f"{min(ssim):.3f}-{max(ssim):.3f}", f"{1000 * sum(t for _, t in results) / len(results):.0f}"]
                print(", ".join(row))
                table_rows.append(row)
    return table_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--alignment", nargs="*", type=Path, metavar="DIR",
                        help="run only the alignment-check figures, on these folders of real pairs and on synthetic ones")
    parser.add_argument("--synthetic", type=int, default=4, help="synthetic pairs per set for --alignment")
    parser.add_argument("--no-record", action="store_true", help="print only; do not write benchmarks/results/")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.alignment is not None:
        rows = alignment_rows(args.alignment, args.synthetic)
        if not args.no_record:
            record("bench_data", [table("pairs flagged by the pre-check's alignment check (data.alignment)",
                                        ["pairs", "case", "flagged", "identity SSIM", "ms per pair"], rows)],
                   title=f"Alignment check: {len(args.alignment)} real set(s), {args.synthetic} synthetic pairs per set")
        return
    print(f"torch threads: {torch.get_num_threads()}")
    rows, notes = [], []
    runs = ((128, 24 if args.quick else 96, "standard"), (128, 24 if args.quick else 96, "subtle"),
            (256, 8 if args.quick else 32, "standard"), (1024, 2 if args.quick else 6, "standard"))
    for size, count, mode in runs:
        rate = synthetic_rate(size, count, mode=mode)
        rows.append([f"synthetic pairs, {size} px {mode}", f"{rate:.2f}"])
        print(f"synthetic pairs/s at {size}x{size} ({mode}): {rate:.2f}")
    for mode in ("standard", "subtle"):
        psnr, share, count = identity_stats(mode=mode)
        notes.append(f"identity baseline (output = input), default synthetic val set, {mode} mode ({count} pairs "
                     f"with defects, 256 px): {psnr:.2f} dB PSNR, {share:.2f} % of pixels changed by > 8/255")
        print(notes[-1])
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
                    what = f"1024x1024 {extension.upper()} pairs, {workers} workers, cache {'on' if cache else 'off'}"
                    rows.append([what, f"{rate:.1f}"])
                    print(f"folder loading, {what}: {rate:.1f} pairs/s")
    if not args.no_record:
        title = f"Synthetic generation and folder loading{' (--quick)' if args.quick else ''}"
        record("bench_data", [table("pairs per second (synthetic generation on 1 torch thread)", ["what", "pairs / s"],
                                    rows)], title=title, notes=notes)


if __name__ == "__main__":
    main()
