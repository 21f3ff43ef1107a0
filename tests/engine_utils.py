"""Tiny training options shared by the engine tests: 4-channel networks, 32 px synthetic pairs."""

from pathlib import Path
from typing import Any

from gan_retouch.config import deep_merge, parse_set_items, resolve


def tiny_options(root: Path, *items: str, recipe: str = "quickstart", extra: dict[str, Any] | None = None) -> dict:
    base = [
        f"checkpoints_root={root}",
        "name=tiny",
        "device=cpu",
        "data.synthetic.size=32",
        "data.crop=null",
        "data.batch_size=2",
        "data.val_count=2",
        "data.synthetic.val_count=2",
        "train.steps=4",
        "train.log_every=1",
        "train.save_every=2",
        "val.every=0",
        "val.samples=1",
        "val.lpips=false",
    ]
    overrides = deep_merge({"model": {
        "generator": {"name": "autoretouch", "args": {"ngf": 4, "n_blocks": 1, "residual": True}},
        "discriminator": {"name": "patchgan", "args": {"ndf": 4, "n_layers": 1}},
    }}, parse_set_items(base + list(items)))
    if extra:
        overrides = deep_merge(overrides, extra)
    return resolve("train", recipe, overrides)[0]
