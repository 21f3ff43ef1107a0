"""Seconds per training step: the engine against a minimal hand-written loop doing the same G + D updates.

Same networks (the quick-start AutoRetouch G with its edit map and PatchGAN D), same batch size and crop, same
data loader, same losses (the quick-start recipe's terms, LSGAN included). Prints both figures and the engine's overhead.

    python benchmarks/bench_train.py [--steps 60] [--device cpu|cuda] [--amp off|bf16|fp16] [--channels-last]
    [--compile] [--no-record]

It records the figures in benchmarks/results/bench_train.json (docs/results.md) unless --no-record.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from gan_retouch.config import parse_set_items, resolve
from gan_retouch.data import build_dataset, build_loader
from gan_retouch.engine.sampler import StreamSampler
from gan_retouch.losses.base import LossContext, WeightedLosses
from gan_retouch.nets.base import run_generator
from gan_retouch.registry import DISCRIMINATORS, GENERATORS
from gan_retouch.train import build_training

sys.path.insert(0, str(Path(__file__).resolve().parent))  # results.py, also when loaded by file path
from results import record, table  # noqa: E402


def options_for(args: argparse.Namespace, root: Path) -> dict:
    items = [
        f"checkpoints_root={root}", "name=bench", f"device={args.device}", f"train.steps={args.steps}",
        f"train.log_every={args.warmup}", "train.save_every=0", "val.every=0", "val.lpips=false",
        f"train.amp={args.amp}", f"train.channels_last={str(args.channels_last).lower()}",
        f"train.compile={str(args.compile).lower()}", "data.val_count=4", "data.synthetic.val_count=4",
        f"data.batch_size={args.batch_size}", f"data.crop={args.crop}", f"data.synthetic.size={args.size}",
        "train.scheduler=constant",
    ]
    return resolve("train", "quickstart", parse_set_items(items))[0]


def engine_seconds_per_step(options: dict) -> float:
    trainer = build_training(options)
    trainer.fit()
    records = [json.loads(line) for line in (trainer.run_dir / "log.jsonl").read_text().splitlines()]
    timed = [r["sec_per_step"] for r in records if "sec_per_step" in r][1:]  # drop the warm-up window
    return sum(timed) / len(timed)


def plain_seconds_per_step(options: dict, device: torch.device, steps: int, warmup: int) -> float:
    torch.manual_seed(0)
    g_entry, d_entry = options["model"]["generator"], options["model"]["discriminator"]
    generator = GENERATORS.build(g_entry["name"], **g_entry["args"]).to(device)
    discriminator = DISCRIMINATORS.build(d_entry["name"], **d_entry["args"]).to(device)
    losses = WeightedLosses(options["losses"]).to(device)
    gan = losses.terms["gan"]
    opt_g = torch.optim.Adam(generator.parameters(), lr=options["train"]["lr"], betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=options["train"]["lr"], betas=(0.5, 0.999))
    data = options["data"]
    dataset = build_dataset(data, "train", 0)
    loader = iter(build_loader(dataset, data, data["batch_size"],
                               sampler=StreamSampler(len(dataset), data["batch_size"], 0), device=device))
    amp = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[options["train"]["amp"]]
    started = 0.0
    for step in range(steps):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        batch = {k: v.to(device) for k, v in next(loader).items() if isinstance(v, torch.Tensor)}
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            fake, pred_mask = run_generator(generator, batch["input"])
            d_loss = gan.discriminator_loss(discriminator(batch["input"], batch["target"]),
                                            discriminator(batch["input"], fake.detach()))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        for p in discriminator.parameters():
            p.requires_grad_(False)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            ctx = LossContext(input=batch["input"], output=fake, target=batch["target"], mask=batch.get("mask"),
                              pred_mask=pred_mask, fake=discriminator(batch["input"], fake))
            g_loss, _ = losses(ctx)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        for p in discriminator.parameters():
            p.requires_grad_(True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / (steps - warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", default="off", choices=["off", "bf16", "fp16"])
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--crop", type=int, default=96)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--no-record", action="store_true", help="print only; do not write benchmarks/results/")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        options = options_for(args, Path(root))
        plain = plain_seconds_per_step(options, torch.device(args.device), args.steps, args.warmup)
        engine = engine_seconds_per_step(options)
    setting = (f"device {args.device}  amp {args.amp}  channels_last {args.channels_last}  compile {args.compile}  "
               f"batch {args.batch_size}x{args.crop}px")
    print(setting)
    print(f"plain loop : {plain * 1000:8.2f} ms/step")
    print(f"engine     : {engine * 1000:8.2f} ms/step")
    print(f"overhead   : {(engine / plain - 1) * 100:+6.1f} %")
    if not args.no_record:
        rows = [["minimal hand-written G + D loop", f"{plain * 1000:.1f}"], ["gan-retouch engine", f"{engine * 1000:.1f}"],
                ["overhead", f"{(engine / plain - 1) * 100:+.1f} %"]]
        record("bench_train", [table(f"quick-start G + PatchGAN, {args.steps - args.warmup} timed steps each; "
                                     f"{' '.join(setting.split())}", ["loop", "ms / step"], rows)],
               title=f"Engine against a plain loop, {args.device}, amp {args.amp}"
                     f"{', channels_last' * args.channels_last}{', compile' * args.compile}")


if __name__ == "__main__":
    main()
